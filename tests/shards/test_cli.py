"""``run --shard`` and ``report merge`` through the real command line (in this process, synthetic checks,
no cluster): shards merged equal the unsharded run, a missing shard is reported, shards never notify and
the merge notifies once, and bad input is one line, exit 2, before anything ran."""

from __future__ import annotations

import json
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, CliResult, RunCli

CHECKS = ("sleeper-1", "sleeper-2", "sleeper-3", "exclusive-a", "exclusive-b", "failing")
CLUSTERS = "alpha,beta"


def outcomes(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(r["cluster"], r["check"], r["outcome"]) for r in report["results"]}


def run_shards(run_cli: RunCli, reports: Path, count: int, *extra: str, run_id: str = "sharded") -> list[CliResult]:
    return [
        run_cli("run", *CHECKS, "--clusters", CLUSTERS, "--shard", f"{index}/{count}", "--run-id", run_id,
                "--report-dir", str(reports), *extra)
        for index in range(1, count + 1)
    ]  # fmt: skip


def merge(run_cli: RunCli, source: Path | str, tmp_path: Path, *extra: str) -> tuple[CliResult, dict[str, Any]]:
    merged = tmp_path / "merged.json"
    merged.unlink(missing_ok=True)
    result = run_cli("report", "merge", str(source), "--report-json", str(merged), "--log-format", "json", *extra)
    return result, json.loads(merged.read_text()) if merged.exists() else {}


def test_three_shards_merged_are_the_unsharded_run(run_cli: RunCli, tmp_path: Path) -> None:
    whole = tmp_path / "whole.json"
    unsharded = run_cli("run", *CHECKS, "--clusters", CLUSTERS, "--report-json", str(whole))
    assert unsharded.code == 1  # "failing" is NG on both clusters
    reports = tmp_path / "reports"
    reports.mkdir()
    shards = run_shards(run_cli, reports, 3)
    # Shard 2 holds alpha's sleeper-2, sleeper-3 and beta's exclusive pair; shards 1 and 3 a "failing" each.
    assert [shard.code for shard in shards] == [1, 0, 1]
    assert sorted(path.name for path in reports.iterdir()) == [f"sharded.shard-{i}-of-3.json" for i in (1, 2, 3)]
    pieces = [json.loads((reports / f"sharded.shard-{i}-of-3.json").read_text()) for i in (1, 2, 3)]
    assert [(p["run_id"], p["shard"]["index"], p["shard"]["count"]) for p in pieces] == [
        ("sharded", i, 3) for i in (1, 2, 3)
    ]
    assert [len(p["results"]) for p in pieces] == [4, 4, 4]
    # Each of them ran its share only, and the shares make the whole matrix once.
    shares = [outcomes(p) for p in pieces]
    assert not (shares[0] & shares[1]) and not (shares[1] & shares[2]) and not (shares[0] & shares[2])

    result, merged = merge(run_cli, reports, tmp_path, "--junit-xml", str(tmp_path / "merged.xml"))
    assert result.code == 1
    assert outcomes(merged) == outcomes(json.loads(whole.read_text()))
    assert len(merged["results"]) == 12
    assert merged["shard"]["merged"] == [1, 2, 3] and merged["shard"]["missing"] == []
    assert merged["run_id"] == "sharded" and merged["ok"] is False
    assert merged["clusters"] == ["alpha", "beta"]
    assert "shards: 3 of 3 reported (run sharded)" in result.out
    assert "NG: 10 passed, 2 failed" in result.out
    suites = ET.parse(tmp_path / "merged.xml").getroot()
    assert suites.get("tests") == "12" and suites.get("failures") == "2" and suites.get("errors") == "0"


def test_exclusive_checks_of_one_cluster_ran_in_one_shard_one_after_the_other(run_cli: RunCli, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    shards = run_shards(run_cli, reports, 4)
    journal = shards[-1].journal  # every shard appends to the same journal
    for cluster in ("alpha", "beta"):
        holders = {
            index
            for index in (1, 2, 3, 4)
            for r in json.loads((reports / f"sharded.shard-{index}-of-4.json").read_text())["results"]
            if r["cluster"] == cluster and r["check"].startswith("exclusive-")
        }
        assert len(holders) == 1, f"{cluster}: exclusive checks split over shards {holders}"
        spans = {
            e["check"]: e["t"]
            for e in journal
            if e["cluster"] == cluster and e["check"].startswith("exclusive-") and e["event"] in ("enter", "exit")
        }
        events = sorted(
            (e["t"], e["event"]) for e in journal if e["cluster"] == cluster and e["check"].startswith("exclusive-")
            and e["event"] in ("enter", "exit")
        )  # fmt: skip
        assert [event for _, event in events] == ["enter", "exit", "enter", "exit"], (cluster, spans)


def test_a_missing_shard_is_reported_and_fails_the_merge(run_cli: RunCli, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    shards = run_shards(run_cli, reports, 3)
    lost = json.loads((reports / "sharded.shard-2-of-3.json").read_text())
    (reports / "sharded.shard-2-of-3.json").unlink()
    result, merged = merge(run_cli, reports, tmp_path, "--junit-xml", str(tmp_path / "merged.xml"))
    assert result.code == 1
    assert "shards: 2 of 3 reported (run sharded); MISSING: 2/3" in result.out
    assert merged["ok"] is False
    assert merged["shard"]["missing"] == [2] and merged["shard"]["merged"] == [1, 3]
    lost_cells = {(r["cluster"], r["check"]) for r in lost["results"]}
    errors = {(r["cluster"], r["check"]): r for r in merged["results"] if r["outcome"] == "error"}
    assert set(errors) == lost_cells and len(lost_cells) == 4
    assert all("shard 2/3 sent no report" in r["reason"] for r in errors.values())
    assert len(merged["results"]) == 12, "the missing shard's checks are listed, not dropped"
    missing_events = [e for e in result.events() if e["event"] == "shard.missing"]
    assert [(e["shard"], e["checks"]) for e in missing_events] == [("2/3", 4)]
    junit_errors = [
        case for case in ET.parse(tmp_path / "merged.xml").iter("testcase") if case.find("error") is not None
    ]
    assert {(case.get("classname"), case.get("name")) for case in junit_errors} == {
        (f"kibertas-async.{cluster}", check) for cluster, check in lost_cells
    }
    assert shards[1].code == 0  # it ran (and passed); only its report was lost


def test_an_unreadable_shard_report_counts_as_missing(run_cli: RunCli, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    run_shards(run_cli, reports, 2)
    (reports / "sharded.shard-1-of-2.json").write_text("{ truncated")
    result, merged = merge(run_cli, reports, tmp_path)
    assert result.code == 1
    assert merged["shard"]["missing"] == [1]
    assert any("sent a report that cannot be read" in r["reason"] for r in merged["results"])


def test_every_shard_missing_is_reported_when_the_count_is_known(run_cli: RunCli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result, merged = merge(run_cli, empty, tmp_path, "--run-id", "gone", "--shards", "3")
    assert result.code == 1
    assert merged["shard"]["missing"] == [1, 2, 3] and merged["ok"] is False
    assert "MISSING: 1/3, 2/3, 3/3" in result.out
    nothing, _ = merge(run_cli, empty, tmp_path)
    assert nothing.code == 1
    assert nothing.err.strip().count("\n") == 0 and "no shard report in" in nothing.err


def test_shards_send_no_message_and_the_merge_sends_one(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "observer.jsonl"
    monkeypatch.setenv("OBSERVER_LOG", str(log))
    monkeypatch.syspath_prepend(str(FIXTURES / "plugins"))
    reports = tmp_path / "reports"
    reports.mkdir()
    run_shards(run_cli, reports, 2, "--plugin", "observer_plugin")
    hooks = [json.loads(line)["hook"] for line in log.read_text().splitlines()]
    assert hooks.count("run_finished") == 2 and hooks.count("reporter") == 2
    assert "notifier" not in hooks
    log.unlink()
    result, _ = merge(run_cli, reports, tmp_path, "--plugin", "observer_plugin")
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert [entry["hook"] for entry in seen] == ["reporter", "notifier"]
    assert seen[1] == {"hook": "notifier", "ok": False}
    assert result.code == 1
    # The observer's exploding notifier is logged as a run's would be, and changes nothing.
    assert [e["notifier"] for e in result.events() if e["event"] == "notifier.failed"] == ["exploding"]


def test_merge_waits_for_a_late_shard(run_cli: RunCli, tmp_path: Path) -> None:
    reports, late = tmp_path / "reports", tmp_path / "late"
    reports.mkdir()
    late.mkdir()
    run_shards(run_cli, reports, 3)
    shutil.move(reports / "sharded.shard-3-of-3.json", late / "sharded.shard-3-of-3.json")

    def arrive() -> None:
        time.sleep(1.0)
        shutil.move(late / "sharded.shard-3-of-3.json", reports / "sharded.shard-3-of-3.json")

    arrival = threading.Thread(target=arrive)
    arrival.start()
    try:
        result, merged = merge(run_cli, reports, tmp_path, "--wait", "2m")
    finally:
        arrival.join()
    assert merged["shard"]["missing"] == [] and len(merged["results"]) == 12
    assert result.code == 1  # "failing" is NG, nothing is missing


def test_dry_run_shows_which_shard_gets_what(run_cli: RunCli) -> None:
    result = run_cli("run", *CHECKS, "--clusters", CLUSTERS, "--shard", "2/3", "--dry-run")
    assert result.code == 0
    assert "4 check(s) on 2 cluster(s), this shard's share; nothing is created" in result.out
    assert "shards (3; this is shard 2/3; each row: cluster: checks)" in result.out
    assert "  shard 2/3: 4 check(s)  <- this shard" in result.out
    sections = result.out.split("\nshards (")[1]
    assert "alpha: sleeper-2 sleeper-3\n      beta: exclusive-a exclusive-b\n" in sections
    assert result.journal == []


def test_dry_run_in_an_indexed_job(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "0")
    monkeypatch.setenv("KIBERTAS_ASYNC_SHARDS", "2")
    result = run_cli("run", *CHECKS, "--clusters", CLUSTERS, "--dry-run")
    assert result.code == 0
    assert "this is shard 1/2" in result.out
    assert "\ncluster alpha (" in result.out and "\ncluster beta (" not in result.out


BAD_RUNS: list[tuple[list[str], dict[str, str], str]] = [
    (["--shard", "3/2"], {}, "--shard '3/2': shards are numbered 1 to 2"),
    (["--shard", "0/0"], {}, "--shard '0/0': N must be at least 1"),
    (["--shard", "a/b"], {}, "--shard 'a/b' is not I/N"),
    ([], {"JOB_COMPLETION_INDEX": "1"}, "JOB_COMPLETION_INDEX=1 is set but KIBERTAS_ASYNC_SHARDS is not"),
    ([], {"KIBERTAS_ASYNC_SHARDS": "2"}, "KIBERTAS_ASYNC_SHARDS=2 is set but JOB_COMPLETION_INDEX is not"),
    (["--shard", "1/2", "--compare", "alpha,beta"], {}, "--compare needs both clusters' results in one process"),
    ([], {"JOB_COMPLETION_INDEX": "2", "KIBERTAS_ASYNC_SHARDS": "2"}, "out of range"),
    (["--shard", "1/2", "--run-id", "r"], {}, "has nowhere to put its report"),
    (["--shard", "1/2", "--report-dir", "{reports}"], {}, "give every shard the same --run-id"),
    (["--shard", "1/2", "--run-id", "r", "--report-dir", "{reports}/nope"], {}, "no such directory"),
    (["--shard", "1/2", "--run-id", "r", "--report-s3", "{reports}"], {}, "is not s3://BUCKET/PREFIX/"),
    (["--shard", "1/2", "--run-id", "r", "--report-s3", "s3://"], {}, "is not s3://BUCKET/PREFIX/"),
    (["--run-id", "r"], {"KIBERTAS_ASYNC_REPORT_DIR": ""}, "--report-dir (or KIBERTAS_ASYNC_REPORT_DIR) is empty"),
]


@pytest.mark.parametrize(("args", "environ", "message"), BAD_RUNS, ids=[case[2][:40] for case in BAD_RUNS])
def test_bad_shard_input_is_one_line_and_exit_2_before_anything_runs(
    run_cli: RunCli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    environ: dict[str, str],
    message: str,
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    argv = [arg.replace("{reports}", str(reports)) for arg in args]
    result = run_cli("run", *CHECKS, "--clusters", CLUSTERS, *argv)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert result.journal == [], "a check ran"
    assert list(reports.iterdir()) == []


def test_bad_merge_input_is_one_line_and_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    run_shards(run_cli, reports, 2, run_id="first")
    run_shards(run_cli, reports, 3, run_id="second")
    cases = [
        ([str(tmp_path / "nope")], "no such directory"),
        (["s3://Bad_Bucket/x"], "is not s3://BUCKET/PREFIX/"),
        ([str(reports)], "holds shard reports of 2 runs (first, second); choose one with --run-id"),
        ([str(reports), "--run-id", "first", "--shards", "3"], "disagree on how many shards there are (2, 3)"),
        ([str(reports), "--run-id", "first", "--shards", "0"], "is not a whole number of at least 1"),
        ([str(reports), "--run-id", "first", "--wait", "soon"], "--wait"),
        ([str(reports), "--run-id", "first", "--junit-xml", str(tmp_path / "nope" / "x.xml")], "does not exist"),
        ([str(reports), "--run-id", " "], "--run-id is empty"),
        ([], "the following arguments are required: SOURCE"),
    ]
    for args, message in cases:
        result = run_cli("report", "merge", *args)
        assert result.code == 2, (args, result.err)
        assert message in result.err, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert run_cli("report").code == 2


def test_shards_of_another_matrix_are_refused(run_cli: RunCli, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    run_shards(run_cli, reports, 2)
    run_cli("run", "sleeper-1", "--clusters", CLUSTERS, "--shard", "2/2", "--run-id", "sharded",
            "--report-dir", str(reports))  # fmt: skip
    result = run_cli("report", "merge", str(reports))
    assert result.code == 2
    assert "disagree on which shard runs what; were they all given the same clusters and checks?" in result.err
