"""Each outcome, the step and reason it names, and that cleanup ran whatever happened."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import RunCli


def _report(tmp_path: Path) -> dict[str, object]:
    return json.loads((tmp_path / "report.json").read_text())  # type: ignore[no-any-return]


def _result(report: dict[str, object], check: str, cluster: str = "alpha") -> dict[str, object]:
    results = report["results"]
    assert isinstance(results, list)
    return next(r for r in results if r["check"] == check and r["cluster"] == cluster)


def test_passing_check_exits_zero_and_cleans_up(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "sleeper-1", "--report-json", str(tmp_path / "report.json"))
    assert result.code == 0
    report = _report(tmp_path)
    assert report["ok"] is True
    assert _result(report, "sleeper-1")["outcome"] == "passed"
    assert [e["event"] for e in result.journal] == ["enter", "exit", "cleanup"]


def test_failed_check_names_step_and_reason_and_cleans_up(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "failing", "--report-json", str(tmp_path / "report.json"))
    assert result.code == 1
    failed = _result(_report(tmp_path), "failing")
    assert failed["outcome"] == "failed"
    assert failed["step"] == "verify thing"
    assert failed["reason"] == "thing is broken: expected HTTP 200, got 503"
    assert {"event": "cleanup", "what": "thing"}.items() <= result.journal[-1].items()
    finished = [e for e in result.events() if e["event"] == "check.finished"]
    assert finished[0]["outcome"] == "failed"
    assert finished[0]["step"] == "verify thing"


def test_unexpected_exception_is_error_with_step(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "crashing", "--report-json", str(tmp_path / "report.json"))
    assert result.code == 1
    crashed = _result(_report(tmp_path), "crashing")
    assert crashed["outcome"] == "error"
    assert crashed["step"] == "explode"
    assert crashed["reason"] == "RuntimeError: boom"
    assert result.journal[-1]["event"] == "cleanup"


def test_step_timeout_names_the_step_and_what_it_last_saw(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "run", "hanging", "--synthetic-step-timeout", "0.2s", "--report-json", str(tmp_path / "report.json")
    )
    assert result.code == 1
    hung = _result(_report(tmp_path), "hanging")
    assert hung["outcome"] == "timeout"
    assert hung["step"] == "wait for something"
    assert hung["reason"] == "step 'wait for something' did not finish within 0.2s (last seen: 0/1 ready)"
    assert result.journal[-1]["event"] == "cleanup"


def test_check_timeout_names_the_waiting_step_and_cleans_up(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "forever", "--check-timeout", "0.3s", "--report-json", str(tmp_path / "report.json"))
    assert result.code == 1
    timed_out = _result(_report(tmp_path), "forever")
    assert timed_out["outcome"] == "timeout"
    assert timed_out["step"] == "wait forever"
    assert "did not finish within 0.3s; step 'wait forever' was still running (last seen: nothing yet)" in str(
        timed_out["reason"]
    )
    assert [e["event"] for e in result.journal] == ["enter", "cleanup"]


def test_run_timeout_stops_everything_and_cleans_up(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "forever",
        "--clusters",
        "alpha,beta",
        "--run-timeout",
        "0.3s",
        "--report-json",
        str(tmp_path / "report.json"),
    )
    assert result.code == 1
    report = _report(tmp_path)
    for cluster in ("alpha", "beta"):
        timed_out = _result(report, "forever", cluster)
        assert timed_out["outcome"] == "timeout"
        assert str(timed_out["reason"]).startswith("run timeout of 0.3s reached during step 'wait forever'")
    assert sorted(e["cluster"] for e in result.journal if e["event"] == "cleanup") == ["alpha", "beta"]


def test_skipped_check_does_not_fail_the_run(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "skipping", "sleeper-1", "--report-json", str(tmp_path / "report.json"))
    assert result.code == 0
    skipped = _result(_report(tmp_path), "skipping")
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"] == "the add-on is not installed on purpose"


def test_one_check_failing_never_stops_the_others(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "crashing",
        "failing",
        "sleeper-1",
        "--clusters",
        "alpha,beta",
        "--report-json",
        str(tmp_path / "report.json"),
    )
    assert result.code == 1
    report = _report(tmp_path)
    for cluster in ("alpha", "beta"):
        assert _result(report, "sleeper-1", cluster)["outcome"] == "passed"
    cleaned = {(e["cluster"], e["check"]) for e in result.journal if e["event"] == "cleanup"}
    assert cleaned == {(c, k) for c in ("alpha", "beta") for k in ("crashing", "failing", "sleeper-1")}


def test_cleanup_that_hangs_is_time_boxed_and_reported_as_left_behind(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "slow-cleanup",
        "--check-timeout",
        "0.2s",
        "--cleanup-timeout",
        "0.2s",
        "--report-json",
        str(tmp_path / "report.json"),
    )
    assert result.code == 1
    stuck = _result(_report(tmp_path), "slow-cleanup")
    assert stuck["cleanup"] == [
        {"description": "remove stubborn object", "status": "timed out", "detail": "not finished within 0.2s"}
    ]
    assert "left behind: remove stubborn object" in result.out


def test_keep_skips_cleanup_on_purpose(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "failing", "--keep", "--report-json", str(tmp_path / "report.json"))
    assert result.code == 1
    assert all(e["event"] != "cleanup" for e in result.journal)
    assert _result(_report(tmp_path), "failing")["cleanup"] == [
        {"description": "remove thing", "status": "kept", "detail": "--keep was given"}
    ]


def test_facts_are_reported(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "reporting", "--report-json", str(tmp_path / "report.json"))
    assert result.code == 0
    assert _result(_report(tmp_path), "reporting")["facts"] == {"node joined": "kwok-node-7"}
