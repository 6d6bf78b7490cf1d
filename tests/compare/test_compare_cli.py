"""``kibertas-async compare OLD.json NEW.json`` over saved reports, and ``run --compare old,new``: exit
codes 0 (no regression), 1 (a regression), 2 (bad input, one line)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from kibertas_async.cli import main
from tests.conftest import RunCli


def saved_report(
    cluster: str, *results: dict[str, Any], kubernetes: str = "v1.36.3", version: int = 2
) -> dict[str, Any]:
    """A saved --report-json document holding one cluster."""
    return {
        "schema": "kibertas-async/run-report",
        "schema_version": version,
        "run_id": f"run-{cluster}",
        "clusters": [cluster],
        "checks": [item["check"] for item in results],
        "results": [{"cluster": cluster, **item} for item in results],
        "kubernetes_versions": {cluster: kubernetes},
    }


def check(
    name: str, outcome: str = "passed", steps: dict[str, float] | None = None, facts: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "check": name,
        "outcome": outcome,
        "step": None if outcome == "passed" else "wait",
        "reason": "" if outcome == "passed" else "it broke",
        "facts": facts or {},
        "steps": [
            {"name": step, "outcome": "passed", "duration_seconds": seconds, "detail": ""}
            for step, seconds in (steps or {}).items()
        ],
    }


def write(path: Path, document: object) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def raw(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def compare_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_no_regression_exits_0_and_shows_versions_and_timings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(
        tmp_path / "old.json",
        saved_report(
            "blue",
            check("cert-manager", steps={"issue leaf certificate": 4.0}, facts={"cert-manager version": "v1.14.2"}),
            kubernetes="v1.30.4",
        ),
    )
    new = write(
        tmp_path / "new.json",
        saved_report(
            "green",
            check("cert-manager", steps={"issue leaf certificate": 5.0}, facts={"cert-manager version": "v1.15.0"}),
            kubernetes="v1.31.0",
        ),
    )
    code, out, err = compare_cli(capsys, old, new)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["CHECK", "/", "VERSION", "/", "STEP", "BLUE", "GREEN", "RATIO"]
    assert lines[1].split() == ["kubernetes", "version", "v1.30.4", "v1.31.0", "changed"]
    assert lines[2].split() == ["cert-manager", "OK", "OK"]
    assert lines[3].split() == ["cert-manager", "version", "v1.14.2", "v1.15.0", "changed"]
    assert lines[4].split() == ["issue", "leaf", "certificate", "4.0s", "5.0s", "1.25x"]
    assert lines[-1] == "OK: green has no regression against blue"


def test_a_regression_exits_1_and_is_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write(
        tmp_path / "old.json", saved_report("blue", check("ingress", steps={"resolve host": 2.0}), check("fluent"))
    )
    new = write(
        tmp_path / "new.json",
        saved_report("green", check("ingress", steps={"resolve host": 9.0}), check("fluent", "failed")),
    )
    code, out, _ = compare_cli(capsys, old, new)
    assert code == 1
    assert "REGRESSION ingress: step 'resolve host' took 9.0s on green, 4.5x the 2.0s on blue" in out
    assert "REGRESSION fluent: NG on green (wait: it broke), OK on blue" in out
    assert out.splitlines()[-1] == "NG: green has 2 regressions against blue"
    # A looser factor forgives the slower step, not the failed check.
    code, out, _ = compare_cli(capsys, old, new, "--regression-factor", "5", "--json")
    assert code == 1
    document = json.loads(out)
    assert [(item["check"], item["kind"]) for item in document["regressions"]] == [("fluent", "outcome")]
    assert document["regression_factor"] == 5.0


def test_one_report_of_two_clusters_takes_each_side_after_a_colon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = saved_report("blue", check("c"))
    both["clusters"] = ["blue", "green"]
    both["results"].append({"cluster": "green", **check("c", "timeout")})
    path = write(tmp_path / "both.json", both)
    code, out, _ = compare_cli(capsys, f"{path}:blue", f"{path}:green")
    assert code == 1 and "REGRESSION c: TIMEOUT on green" in out


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    good = write(tmp_path / "good.json", saved_report("blue", check("c")))
    two = saved_report("blue", check("c"))
    two["clusters"] = ["blue", "green"]
    return {
        "missing file": ([str(tmp_path / "nope.json"), good], "cannot read report"),
        "not json": ([raw(tmp_path / "x.json", "{"), good], "is not JSON"),
        "foreign document": (
            [write(tmp_path / "f.json", {"schema": "other"}), good],
            "is not a kibertas-async run report",
        ),
        "newer schema": ([write(tmp_path / "v9.json", saved_report("b", version=9)), good], "has schema version 9"),
        "ambiguous": ([write(tmp_path / "two.json", two), good], "holds 2 clusters (blue, green); name one"),
        "unknown cluster": ([f"{good}:red", good], "has no cluster 'red' (it holds: blue)"),
        "malformed result": (
            [write(tmp_path / "m.json", saved_report("b", {"check": "c", "outcome": "great"})), good],
            "a result is malformed",
        ),
        "bad factor": ([good, good, "--regression-factor", "0.5"], "must be a number of at least 1"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "not json",
        "foreign document",
        "newer schema",
        "ambiguous",
        "unknown cluster",
        "malformed result",
        "bad factor",
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    args, message = _bad_inputs(tmp_path)[case]
    code, out, err = compare_cli(capsys, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_a_version_1_report_is_read_without_kubernetes_versions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_document = saved_report("blue", check("c"), version=1)
    del old_document["kubernetes_versions"]
    code, out, _ = compare_cli(
        capsys,
        write(tmp_path / "old.json", old_document),
        write(tmp_path / "new.json", saved_report("green", check("c"))),
    )
    assert code == 0
    assert out.splitlines()[1].split() == ["kubernetes", "version", "-", "v1.36.3"]


# --- run --compare, on the synthetic checks (no cluster needed) ------------------------------------


def test_run_compare_puts_the_comparison_in_every_report(run_cli: RunCli, tmp_path: Path) -> None:
    report_path, junit_path = tmp_path / "report.json", tmp_path / "junit.xml"
    result = run_cli(
        "run",
        "sleeper-1",
        "sleeper-2",
        "--clusters",
        "alpha,beta",
        "--compare",
        "alpha,beta",
        "--report-json",
        str(report_path),
        "--junit-xml",
        str(junit_path),
    )
    assert result.code == 0, result.err
    assert "OK: beta has no regression against alpha" in result.out
    report = json.loads(report_path.read_text())
    assert report["schema_version"] == 2 and report["ok"] is True
    comparison = report["comparison"]
    assert (comparison["old"], comparison["new"], comparison["ok"], comparison["regressions"]) == (
        "alpha",
        "beta",
        True,
        [],
    )
    assert [(item["check"], item["old"], item["new"]) for item in comparison["checks"]] == [
        ("sleeper-1", "passed", "passed"),
        ("sleeper-2", "passed", "passed"),
    ]
    assert [timing["step"] for timing in comparison["checks"][0]["timings"]] == ["sleep"]
    suites = ET.parse(junit_path).getroot().findall("testsuite")
    assert [suite.get("name") for suite in suites] == ["alpha", "beta", "compare alpha -> beta"]
    assert [case.get("name") for case in suites[2].findall("testcase")] == ["sleeper-1", "sleeper-2"]
    assert not suites[2].findall("testcase/failure")


def test_run_compare_a_regression_exits_1_and_is_a_junit_failure(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    # The same sleeper, 0.05 s on alpha and 3 s on beta: more than twice as slow above the 1 s floor.
    config.write_text("clusters:\n  beta:\n    synthetic-delay: 3s\n", encoding="utf-8")
    junit_path = tmp_path / "junit.xml"
    result = run_cli(
        "run",
        "sleeper-1",
        "--clusters",
        "alpha,beta",
        "--compare",
        "alpha,beta",
        "--config",
        str(config),
        "--junit-xml",
        str(junit_path),
    )
    assert result.code == 1
    # 3 s of sleep, and on a busy machine a little more: the figure is measured, not the configured delay.
    assert re.search(r"REGRESSION sleeper-1: step 'sleep' took 3\.\d+s on beta", result.out), result.out
    root = ET.parse(junit_path).getroot()
    [failure] = root.findall("testsuite[@name='compare alpha -> beta']/testcase/failure")
    assert failure.get("type") == "regression" and "step 'sleep'" in (failure.get("message") or "")
    assert root.get("failures") == "1"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("alpha,gamma", "'gamma' is not a cluster of this run (clusters: alpha, beta)"),
        ("alpha", "give two different cluster names"),
        ("alpha,alpha", "give two different cluster names"),
        ("alpha,,beta", "has an empty entry"),
    ],
)
def test_run_compare_with_a_bad_cluster_name_is_one_line_and_exit_2(run_cli: RunCli, value: str, message: str) -> None:
    result = run_cli("run", "sleeper-1", "--clusters", "alpha,beta", "--compare", value)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and message in result.err, result.err
    assert result.journal == []  # nothing ran
