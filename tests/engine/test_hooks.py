"""The observation hooks fire in order; reporters and notifiers run; a failing notifier changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, RunCli


def test_observer_hooks_reporters_and_notifiers(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "observer.jsonl"
    monkeypatch.setenv("OBSERVER_LOG", str(log))
    monkeypatch.syspath_prepend(str(FIXTURES / "plugins"))
    result = run_cli(
        "run", "sleeper-1", "failing", "--clusters", "alpha,beta", "--run-id", "obs", "--plugin", "observer_plugin"
    )
    assert result.code == 1, "the exploding notifier must not change the exit code"
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    assert seen[0] == {
        "hook": "run_started",
        "run_id": "obs",
        "clusters": ["alpha", "beta"],
        "checks": ["sleeper-1", "failing"],
    }
    finished = [entry for entry in seen if entry["hook"] == "check_finished"]
    assert sorted((e["cluster"], e["check"], e["outcome"]) for e in finished) == [
        ("alpha", "failing", "failed"),
        ("alpha", "sleeper-1", "passed"),
        ("beta", "failing", "failed"),
        ("beta", "sleeper-1", "passed"),
    ]
    assert [entry["hook"] for entry in seen[5:]] == ["run_finished", "reporter", "notifier"]
    assert seen[5] == {"hook": "run_finished", "ok": False, "results": 4}
    failed = [e for e in result.events() if e["event"] == "notifier.failed"]
    assert failed == [
        {**failed[0], "notifier": "exploding", "reason": "ConnectionError: chat service is down", "level": "error"}
    ]
