"""A real process receiving SIGTERM/SIGINT: cleanup runs, exit code 143/130; a second signal abandons."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import read_journal
from tests.engine.conftest import ProcessEnv


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kibertas_async", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_journal(path: Path, event: str, count: int, process: subprocess.Popen[str]) -> None:
    """Wait (bounded by the test timeout) until the child has journalled ``count`` ``event``s."""
    while sum(e["event"] == event for e in read_journal(path)) < count:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_cancels_checks_and_cleanup_still_runs(
    process_env: ProcessEnv, tmp_path: Path, signum: signal.Signals, code: int
) -> None:
    journal, report = tmp_path / "journal.jsonl", tmp_path / "report.json"
    process = _start(
        [
            "run",
            "forever",
            "--clusters",
            "alpha,beta",
            "--synthetic-journal",
            str(journal),
            "--report-json",
            str(report),
            "--log-format",
            "json",
        ],
        process_env(KIBERTAS_ASYNC_DISABLE_PLUGINS="broken"),
    )
    _wait_for_journal(journal, "enter", 2, process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=30)
    assert process.returncode == code, err
    assert "Traceback" not in err
    cleaned = sorted(e["cluster"] for e in read_journal(journal) if e["event"] == "cleanup")
    assert cleaned == ["alpha", "beta"]
    data = json.loads(report.read_text())
    assert data["interrupted_by"] == signum.name
    for result in data["results"]:
        assert result["outcome"] == "error"
        assert result["reason"] == f"interrupted by {signum.name} during step 'wait forever'"
        assert result["cleanup"][0]["status"] == "done"


def test_second_signal_abandons_cleanup_and_says_what_was_left(process_env: ProcessEnv, tmp_path: Path) -> None:
    journal, report = tmp_path / "journal.jsonl", tmp_path / "report.json"
    process = _start(
        [
            "run",
            "slow-cleanup",
            "--synthetic-journal",
            str(journal),
            "--report-json",
            str(report),
            "--log-format",
            "json",
            "--cleanup-timeout",
            "10m",
        ],
        process_env(KIBERTAS_ASYNC_DISABLE_PLUGINS="broken"),
    )
    _wait_for_journal(journal, "enter", 1, process)
    process.send_signal(signal.SIGTERM)
    _wait_for_journal(journal, "cleanup-started", 1, process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    data = json.loads(report.read_text())
    assert data["results"][0]["cleanup"] == [
        {"description": "remove stubborn object", "status": "abandoned", "detail": "a second signal abandoned cleanup"}
    ]
    assert "left behind: remove stubborn object" in out
    assert any(json.loads(line)["event"] == "cleanup.abandoned" for line in err.splitlines() if line.startswith("{"))
