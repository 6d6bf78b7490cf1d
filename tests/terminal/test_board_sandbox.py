"""The live board on the sandbox's real clusters, in a real terminal (a tmux pane): the cert-manager and
datadog-agent checks on both clusters, watched while they run and at the end (then the summary table and
the comparison of the two clusters), wide and narrow; and off a terminal, the same run's events are JSON
lines as they always were."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner
from tests.terminal.conftest import (
    SUMMARY_HEADER,
    MakeTerminal,
    assert_no_json_lines,
    board_rows,
    board_title,
    final_board,
    row_of,
    summary_lines,
    terminal_environment,
)

CLUSTERS = ("sandbox-1", "sandbox-2")
CHECKS = ("cert-manager", "datadog-agent")
WATCHED = ("check.started", "step.started", "step.finished", "check.finished", "run.started", "run.finished")
"""Events whose order and keys do not depend on timing."""


def a_running_step(screen: str) -> bool:
    """Some row shows a check running a named step."""
    try:
        rows = board_rows(screen)
    except AssertionError:  # not drawn yet
        return False
    return any(re.match(r"sandbox-\d +\S+ +running +\d+\.\ds +\S", row) for row in rows)


def run_in_terminal(terminal: Any, check_runner: CheckRunner, report: Path, *extra: str) -> tuple[str, str]:
    """The screen while a step runs, and everything at the end, of ``run cert-manager datadog-agent
    EXTRA`` with ``--log-format auto`` (the default) in ``terminal``."""
    argv = check_runner.argv(*CHECKS, *extra, "--log-format", "auto", report=report)
    terminal.start([sys.executable, "-m", "kibertas_async", *argv], terminal_environment())
    during = terminal.wait_for(a_running_step, "a row running a step")
    code = terminal.wait_exit()
    final = terminal.everything()
    assert code == 0, final
    return during, final


def test_the_board_while_the_checks_run_and_at_the_end(
    make_terminal: MakeTerminal, check_runner: CheckRunner, nothing_left: NothingLeft, tmp_path: Path
) -> None:
    terminal = make_terminal(width=160, height=40)
    # A blue/green comparison of the two clusters too (timings never a regression: this is no benchmark).
    compare = ("--compare", "sandbox-1,sandbox-2", "--regression-factor", "1000")
    during, final = run_in_terminal(terminal, check_runner, tmp_path / "report.json", *compare)

    assert [row.split()[:2] for row in board_rows(during)] == [[c, k] for c in CLUSTERS for k in CHECKS]
    assert "running" in board_title(during)
    rows = final_board(final)
    report = json.loads((tmp_path / "report.json").read_text())
    for result in report["results"]:
        last_step = result["steps"][-1]["name"]
        row = row_of(rows, result["cluster"], result["check"])
        assert re.match(rf"{result['cluster']} +{result['check']} +OK +\d+\.\ds +{re.escape(last_step)}", row), row
    assert " 4 OK  run " in board_title(final.split(SUMMARY_HEADER)[0])
    summary = summary_lines(final)
    assert [line.split()[:3] for line in summary[:4]] == [[c, k, "OK"] for c in CLUSTERS for k in CHECKS]
    assert summary[-1].startswith("OK: 4 passed in ") and summary[-1].endswith(f"(run {report['run_id']})")
    comparison = summary[summary.index(next(line for line in summary if line.startswith("CHECK / VERSION"))) :]
    check_rows = [line.split()[:3] for line in comparison if line.split()[0] in CHECKS and not line.startswith(" ")]
    assert check_rows == [[check, "OK", "OK"] for check in CHECKS]
    assert "OK: sandbox-2 has no regression against sandbox-1" in comparison
    assert_no_json_lines(final)
    assert terminal.cursor_shown_at_end()
    nothing_left()


def test_the_board_on_a_narrow_terminal(
    make_terminal: MakeTerminal, check_runner: CheckRunner, nothing_left: NothingLeft, tmp_path: Path
) -> None:
    terminal = make_terminal(width=60, height=24)
    during, final = run_in_terminal(terminal, check_runner, tmp_path / "report.json")

    for screen in (during, final.split(SUMMARY_HEADER)[0]):
        rows = board_rows(screen)
        # One line a row: a wrapped row would add lines that begin with no cluster's name.
        assert [row.split()[:2] for row in rows] == [[c, k] for c in CLUSTERS for k in CHECKS], screen
        assert all(len(row) <= 60 for row in rows)
    for cluster in CLUSTERS:
        for check in CHECKS:
            assert re.match(rf"{cluster} +{check} +OK +\d+\.\ds", row_of(final_board(final), cluster, check))
    assert_no_json_lines(final)
    nothing_left()


def test_off_a_terminal_the_events_are_the_json_lines_of_before(
    check_runner: CheckRunner, nothing_left: NothingLeft
) -> None:
    auto = check_runner.run(*CHECKS, "--log-format", "auto", in_process=False)
    forced = check_runner.run(*CHECKS, in_process=False)  # the kit's runs say --log-format json
    assert auto.code == forced.code == 0, auto.err + forced.err
    for run in (auto, forced):
        lines = [line for line in run.err.splitlines() if line.strip()]
        assert all(line.startswith("{") and json.loads(line)["event"] for line in lines), run.err
        assert "step.progress" not in run.err  # a debug event: the board's, never the stream's at info

    def shapes(events: list[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[str, list[str]]]]:
        """Per cluster and check, each watched event's name and keys (what differs run to run is values)."""
        found: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}
        for event in events:
            if event["event"] in WATCHED:
                keys = sorted(key for key in event if key != "detail")
                found.setdefault((event.get("cluster", ""), event.get("check", "")), []).append((event["event"], keys))
        return found

    assert shapes(auto.events) == shapes(forced.events)
    assert len(auto.events_named("check.finished")) == 4
    nothing_left()
