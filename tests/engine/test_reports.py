"""The JSON report (versioned schema) and the JUnit XML report, as CI readers expect them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.conftest import RunCli


def test_json_report_has_the_documented_shape(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    result = run_cli(
        "run", "sleeper-1", "failing", "--clusters", "alpha,beta", "--report-json", str(path), "--run-id", "r1"
    )
    assert result.code == 1
    report = json.loads(path.read_text())
    assert report["schema"] == "kibertas-async/run-report"
    assert report["schema_version"] == 2
    assert report["run_id"] == "r1"
    assert report["ok"] is False
    assert report["clusters"] == ["alpha", "beta"]
    assert report["checks"] == ["sleeper-1", "failing"]
    assert report["counts"] == {"passed": 2, "failed": 2, "error": 0, "timeout": 0, "skipped": 0}
    assert [(r["cluster"], r["check"]) for r in report["results"]] == [
        ("alpha", "sleeper-1"),
        ("alpha", "failing"),
        ("beta", "sleeper-1"),
        ("beta", "failing"),
    ]
    failing = report["results"][1]
    assert [s["name"] for s in failing["steps"]] == ["create thing", "verify thing"]
    assert [s["outcome"] for s in failing["steps"]] == ["passed", "failed"]
    assert failing["cleanup"] == [{"description": "remove thing", "status": "done", "detail": ""}]
    assert set(failing) == {
        "cluster",
        "check",
        "outcome",
        "step",
        "reason",
        "started_at",
        "duration_seconds",
        "facts",
        "steps",
        "cleanup",
        "api_requests",
        "diagnostics",
    }


def test_junit_report_has_a_suite_per_cluster_and_a_case_per_check(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    result = run_cli(
        "run",
        "sleeper-1",
        "failing",
        "crashing",
        "skipping",
        "hanging",
        "--clusters",
        "alpha,beta",
        "--junit-xml",
        str(path),
    )
    assert result.code == 1
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("10", "4", "2", "2")
    suites = root.findall("testsuite")
    assert [suite.get("name") for suite in suites] == ["alpha", "beta"]
    for suite in suites:
        cases = {case.get("name"): case for case in suite.findall("testcase")}
        assert list(cases) == ["sleeper-1", "failing", "crashing", "skipping", "hanging"]
        assert cases["sleeper-1"].find("failure") is None
        failure = cases["failing"].find("failure")
        assert failure is not None
        assert failure.get("message") == "verify thing: thing is broken: expected HTTP 200, got 503"
        assert failure.get("type") == "failed"
        error = cases["crashing"].find("error")
        assert error is not None and error.get("message") == "explode: RuntimeError: boom"
        assert cases["skipping"].find("skipped") is not None
        timeout = cases["hanging"].find("failure")
        assert timeout is not None and timeout.get("type") == "timeout"
        assert str(timeout.get("message")).startswith("wait for something: step 'wait for something' did not finish")
        assert float(str(cases["failing"].get("time"))) >= 0
        assert cases["failing"].get("classname") == f"kibertas-async.{suite.get('name')}"


def test_summary_table_shows_ok_and_ng_with_step_and_reason(run_cli: RunCli) -> None:
    result = run_cli("run", "sleeper-1", "failing")
    lines = result.out.splitlines()
    assert lines[0].split() == ["CLUSTER", "CHECK", "RESULT", "TIME", "WHERE", "/", "WHY"]
    assert any(line.startswith("alpha") and " OK " in line and "sleeper-1" in line for line in lines)
    assert any(
        "failing" in line and " NG " in line and "verify thing: thing is broken: expected HTTP 200, got 503" in line
        for line in lines
    )
    assert lines[-1].startswith("NG: 1 passed, 1 failed in ")


def test_event_stream_carries_run_cluster_check_step_outcome_duration(run_cli: RunCli) -> None:
    result = run_cli("run", "failing", "--run-id", "ev1")
    events = result.events()
    names = [e["event"] for e in events]
    assert names[0] == "run.started" and names[-1] == "run.finished"
    assert {"check.started", "step.started", "step.finished", "check.finished", "cleanup.done"} <= set(names)
    step_done = next(e for e in events if e["event"] == "step.finished" and e["step"] == "verify thing")
    assert step_done["run_id"] == "ev1"
    assert step_done["cluster"] == "alpha"
    assert step_done["check"] == "failing"
    assert step_done["outcome"] == "failed"
    assert isinstance(step_done["duration"], float)
    assert all("timestamp" in e and "level" in e for e in events)


def test_log_level_filters_events(run_cli: RunCli) -> None:
    quiet = run_cli("run", "sleeper-1", "--log-level", "warning")
    assert quiet.code == 0
    assert quiet.events() == []
    chatty = run_cli("run", "hanging", "--log-level", "debug")
    assert any(e["event"] == "step.progress" for e in chatty.events())


def test_secret_option_values_never_reach_the_event_stream(run_cli: RunCli, tmp_path: Path) -> None:
    secret = "s3cr3t-token-value"
    result = run_cli("run", "sleeper-1", "--synthetic-secret", secret, "--report-json", str(tmp_path / "r.json"))
    assert result.code == 0
    assert secret not in result.err
    assert any(e.get("secret_seen") == "<redacted>" for e in result.events())
    assert secret not in (tmp_path / "r.json").read_text()
