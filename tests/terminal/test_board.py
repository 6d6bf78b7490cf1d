"""The live board in a real terminal (a tmux pane), with the synthetic checks: what a person watching a
run sees while it runs and at its end, on a wide and a narrow terminal, when it is interrupted (Ctrl-C,
SIGTERM), when a plugin breaks, and where the board does not belong (``TERM=dumb``, ``$CI``)."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import SYNTHETIC_PLUGIN_DIR
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
from tests.terminal.terminal import Terminal

CLUSTERS = ("alpha", "beta")
SLOW = ("--synthetic-delay", "3s")
"""The sleepers' step lasts long enough to be seen running."""


def start(terminal: Terminal, kubeconfig: Path, *args: str, **env: str) -> None:
    """``kibertas-async run ARGS`` with the synthetic checks on both clusters, in ``terminal``."""
    argv = [sys.executable, "-m", "kibertas_async", "run", *args, "--plugin", "kibertas_async_synthetic"]
    argv += ["--clusters", ",".join(CLUSTERS)]
    own = {"PYTHONPATH": str(SYNTHETIC_PLUGIN_DIR), "KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD": "1"}
    terminal.start(argv, terminal_environment(**{**own, "KUBECONFIG": str(kubeconfig), **env}))


def running(check: str, step: str) -> Callable[[str], bool]:
    """A screen predicate: a row of ``check`` shows it running ``step``."""

    def seen(screen: str) -> bool:
        try:
            rows = board_rows(screen)
        except AssertionError:  # not drawn yet
            return False
        return any(re.match(rf"\S+ +{check} +running +\d+\.\ds +{step}", row) for row in rows)

    return seen


def test_a_run_on_a_terminal_is_a_live_board_then_the_summary(make_terminal: MakeTerminal, kubeconfig: Path) -> None:
    terminal = make_terminal(width=160, height=40)
    checks = ("sleeper-1", "failing", "hanging", "crashing")
    start(terminal, kubeconfig, *checks, *SLOW, "--synthetic-step-timeout", "2s")

    during = terminal.wait_for(running("sleeper-1", "sleep"), "sleeper-1 running its step")
    assert [row.split()[:2] for row in board_rows(during)] == [[c, k] for c in CLUSTERS for k in checks]
    assert re.match(r"\d+s  .*running", board_title(during)), board_title(during)
    assert not terminal.cursor_visible()  # the board is being drawn in place

    assert terminal.wait_exit() == 1
    final = terminal.everything()
    rows = final_board(final)
    for cluster in CLUSTERS:
        assert re.match(rf"{cluster} +sleeper-1 +OK +\d+\.\ds +sleep$", row_of(rows, cluster, "sleeper-1"))
        assert re.match(
            rf"{cluster} +failing +NG +\d+\.\ds +verify thing +thing is broken", row_of(rows, cluster, "failing")
        )
        hanging = row_of(rows, cluster, "hanging")
        assert re.match(rf"{cluster} +hanging +TIMEOUT +\d+\.\ds +wait for something +step ", hanging)
        assert hanging.endswith("(last seen: 0/1 ready)")
        assert re.match(
            rf"{cluster} +crashing +ERROR +\d+\.\ds +explode +RuntimeError: boom$", row_of(rows, cluster, "crashing")
        )
    assert " 2 OK, 2 NG, 2 ERROR, 2 TIMEOUT  run " in board_title(final.split(SUMMARY_HEADER)[0])
    # Errors are lines above the board (the traceback with them); the summary table is below it.
    assert final.index("[error    ] check.crashed") < final.index(row_of(rows, "alpha", "sleeper-1"))
    assert "RuntimeError: boom" in final.split(SUMMARY_HEADER)[0]
    summary = summary_lines(final)
    assert [line.split()[:3] for line in summary[:2]] == [["alpha", "crashing", "ERROR"], ["alpha", "failing", "NG"]]
    assert any(line.startswith("NG: 2 passed, 2 failed, 2 error, 2 timeout in ") for line in summary)
    assert_no_json_lines(final)
    assert terminal.cursor_shown_at_end()


def test_on_a_narrow_terminal_every_row_is_still_one_readable_line(
    make_terminal: MakeTerminal, kubeconfig: Path
) -> None:
    terminal = make_terminal(width=60, height=20)
    checks = ("sleeper-1", "failing", "hanging")
    start(terminal, kubeconfig, *checks, *SLOW, "--synthetic-step-timeout", "2s")

    during = terminal.wait_for(running("sleeper-1", "sleep"), "sleeper-1 running its step")
    assert terminal.wait_exit() == 1
    final = terminal.everything()
    for screen in (during, final.split(SUMMARY_HEADER)[0]):
        rows = board_rows(screen)
        # One line per row: a wrapped row would add lines that begin with no cluster's name.
        assert [row.split()[:2] for row in rows] == [[c, k] for c in CLUSTERS for k in checks], screen
        assert all(len(row) <= 60 for row in rows)
        assert board_title(screen).startswith(tuple("0123456789"))
    rows = final_board(final)
    for cluster in CLUSTERS:
        assert re.match(rf"{cluster} +sleeper-1 +OK +\d+\.\ds +sleep", row_of(rows, cluster, "sleeper-1"))
        # The long reason is cut short with an ellipsis, not wrapped; cluster, check, result and time stay whole.
        hanging = row_of(rows, cluster, "hanging")
        assert re.match(rf"{cluster} +hanging +TIMEOUT +\d+\.\ds +wait", hanging)
        assert hanging.endswith("…"), hanging
    assert_no_json_lines(final)


def test_ctrl_c_stops_the_board_cleanly_and_the_summary_still_prints(
    make_terminal: MakeTerminal, kubeconfig: Path
) -> None:
    terminal = make_terminal(width=160, height=40)
    start(terminal, kubeconfig, "forever", "sleeper-1", *SLOW)
    terminal.wait_for(running("forever", "wait forever"), "forever running")
    terminal.send_keys("C-c")

    assert terminal.wait_exit() == 130
    final = terminal.everything()
    assert board_title(final.split(SUMMARY_HEADER)[0]).startswith("interrupted by SIGINT, cleaning up")
    rows = final_board(final)
    for cluster in CLUSTERS:
        assert re.match(
            rf"{cluster} +forever +ERROR +\d+\.\ds +wait forever +interrupted by SIGINT during step 'wait forever'",
            row_of(rows, cluster, "forever"),
        )
    assert "[warning  ] run.interrupted" in final
    assert any(line.startswith("interrupted by SIGINT: ") for line in summary_lines(final))
    assert "Traceback" not in final
    assert terminal.cursor_shown_at_end()


def test_sigterm_stops_the_board_cleanly_and_the_summary_still_prints(
    make_terminal: MakeTerminal, kubeconfig: Path
) -> None:
    terminal = make_terminal(width=160, height=40)
    start(terminal, kubeconfig, "forever", *SLOW)
    terminal.wait_for(running("forever", "wait forever"), "forever running")
    os.kill(terminal.pid(), signal.SIGTERM)

    assert terminal.wait_exit() == 143
    final = terminal.everything()
    assert board_title(final.split(SUMMARY_HEADER)[0]).startswith("interrupted by SIGTERM")
    assert re.match(r"alpha +forever +ERROR ", row_of(final_board(final), "alpha", "forever"))
    assert any(line.startswith("interrupted by SIGTERM: ") for line in summary_lines(final))
    assert terminal.cursor_shown_at_end()


def test_a_broken_plugin_is_a_line_above_the_board_which_goes_on(make_terminal: MakeTerminal, kubeconfig: Path) -> None:
    terminal = make_terminal(width=160, height=40)
    fixtures = Path(__file__).parents[1] / "fixtures" / "plugins"
    start(
        terminal,
        kubeconfig,
        "sleeper-1",
        "failing",
        "--plugin",
        "raising_hooks",
        PYTHONPATH=f"{SYNTHETIC_PLUGIN_DIR}{os.pathsep}{fixtures}",
        RAISING_HOOKS="run_started,check_finished,run_finished",
    )
    assert terminal.wait_exit() == 1
    final = terminal.everything()
    board = final.split(SUMMARY_HEADER)[0]
    for hook in ("run_started", "check_finished", "run_finished"):
        assert f"hook=kibertas_async_{hook}" in board  # the plugin.failed line
        assert f"{hook} is broken on purpose" in final.split(SUMMARY_HEADER)[1]  # and the summary says so
    rows = final_board(final)
    for cluster in CLUSTERS:
        assert row_of(rows, cluster, "sleeper-1").split()[2] == "OK"
        assert row_of(rows, cluster, "failing").split()[2] == "NG"
    assert_no_json_lines(final)
    assert terminal.cursor_shown_at_end()


def test_secrets_are_blank_on_the_board_too(make_terminal: MakeTerminal, kubeconfig: Path) -> None:
    terminal = make_terminal(width=200, height=40)
    start(terminal, kubeconfig, "leaky-crash", "leaky-fail", "--synthetic-secret", "s3cr3t-on-the-board")
    assert terminal.wait_exit() == 1
    final = terminal.everything()
    assert "<redacted>" in final_board(final)[0] + final_board(final)[1]
    for planted in ("s3cr3t-on-the-board", "not-a-real-token"):  # an option's secret, the kubeconfig's token
        assert planted not in final


def test_where_a_board_does_not_belong_auto_is_console_lines(make_terminal: MakeTerminal, kubeconfig: Path) -> None:
    for env in ({"TERM": "dumb"}, {"CI": "true"}):
        terminal = make_terminal(width=160, height=40)
        start(terminal, kubeconfig, "sleeper-1", **env)
        assert terminal.wait_exit() == 0, env
        final = terminal.everything()
        assert "[info     ] check.finished" in final, env
        assert not any(line.startswith("CLUSTER CHECK RESULT TIME STEP") for line in final.splitlines()), env
        assert summary_lines(final)[-1].startswith("OK: 2 passed in "), env


def test_more_rows_than_lines_shows_the_running_and_failed_ones_and_counts_the_rest(
    make_terminal: MakeTerminal, kubeconfig: Path
) -> None:
    terminal = make_terminal(width=120, height=10)
    sleepers = [f"sleeper-{index}" for index in range(1, 7)]
    start(terminal, kubeconfig, *sleepers, "failing", *SLOW)  # 14 rows; 10 lines leave room for 6

    def more_line(screen: str) -> str:
        return next(line for line in screen.splitlines() if line.startswith("... ") and " more: " in line)

    def six_running(screen: str) -> bool:
        return (
            running("sleeper-1", "sleep")(screen) and [row.split()[2] for row in board_rows(screen)] == ["running"] * 6
        )

    # While twelve run, six of them fill the lines (the failed ones wait for room).
    during = terminal.wait_for(six_running, "six rows running")
    assert more_line(during).startswith("... 8 more: ")

    assert terminal.wait_exit() == 1
    final = terminal.everything().split(SUMMARY_HEADER)[0]
    rows = board_rows(final)
    # Nothing runs any more: the ones that did not pass are kept first, then passed ones fill the lines,
    # all in the run's order; the rest are counted.
    shown = [row.split()[:3] for row in rows]
    passed = [["alpha", name, "OK"] for name in sleepers[:4]]
    assert shown == [*passed, ["alpha", "failing", "NG"], ["beta", "failing", "NG"]], final
    assert more_line(final) == "... 8 more: 8 OK"
