"""Outcomes under task groups: a CheckFailed raised inside a task group is FAILED with its step (the
group is unwrapped at the step boundary), and a sibling cancelled by it is CANCELLED, never TIMEOUT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import RunCli


def _only_result(tmp_path: Path) -> dict[str, Any]:
    results: list[dict[str, Any]] = json.loads((tmp_path / "report.json").read_text())["results"]
    assert len(results) == 1
    return results[0]


def test_check_failed_inside_a_task_group_in_a_step_is_failed_with_that_step(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "group-failing", "--report-json", str(tmp_path / "report.json"))
    assert result.code == 1
    checked = _only_result(tmp_path)
    assert (checked["outcome"], checked["step"], checked["reason"]) == (
        "failed",
        "probe both",
        "probe a found the add-on broken",
    )
    steps = {step["name"]: step["outcome"] for step in checked["steps"]}
    assert steps == {"probe both": "failed", "probe b": "cancelled"}


def test_a_sibling_cancelled_by_a_failing_task_is_not_a_timeout(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "group-failing-in-step", "--report-json", str(tmp_path / "report.json"))
    assert result.code == 1
    checked = _only_result(tmp_path)
    assert (checked["outcome"], checked["step"]) == ("failed", "probe a")
    steps = {step["name"]: step["outcome"] for step in checked["steps"]}
    assert steps == {"probe a": "failed", "probe b": "cancelled"}
    assert "timeout" not in json.dumps(checked)


def test_a_check_deadline_still_makes_the_waiting_step_timeout(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "forever", "--check-timeout", "0.2s", "--report-json", str(tmp_path / "report.json"))
    assert result.code == 1
    checked = _only_result(tmp_path)
    assert (checked["outcome"], checked["step"]) == ("timeout", "wait forever")
    assert checked["steps"][0]["outcome"] == "timeout"
