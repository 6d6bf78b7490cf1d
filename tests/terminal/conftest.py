"""Fixtures: real terminals (tmux panes) and the environment a ``kibertas-async`` in one of them gets."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kibertas_async.testing.runner import option_environment_names
from tests.terminal.terminal import Terminal, tmux_or_skip

MakeTerminal = Callable[..., Terminal]
"""``make_terminal(width=160, height=40)``: a fresh pane, closed after the test."""

BOARD_HEADER = re.compile(r"^CLUSTER +CHECK +RESULT +TIME +STEP")
"""The board's column headings (the summary table's say ``WHERE / WHY`` and no ``STEP``)."""
SUMMARY_HEADER = "WHERE / WHY"
"""The end of the summary table's heading, which follows the board's last drawing."""


@pytest.fixture
def make_terminal(tmp_path: Path) -> Iterator[MakeTerminal]:
    tmux = tmux_or_skip()
    made: list[Terminal] = []

    def make(*, width: int = 160, height: int = 40) -> Terminal:
        terminal = Terminal(tmux, tmp_path / f"tmux-{len(made)}", width=width, height=height)
        made.append(terminal)
        return terminal

    yield make
    for terminal in made:
        terminal.close()


def terminal_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any option's variables, ``$CI``, ``NO_COLOR``, ``TERM`` (tmux
    sets its own) or tmux's own, in UTF-8, plus ``extra``: what a person's shell would give the run."""
    hidden = option_environment_names() | {"CI", "NO_COLOR", "TERM", "TMUX", "TMUX_PANE", "COLUMNS", "LINES"}
    env = {name: value for name, value in os.environ.items() if name not in hidden}
    env["LANG"] = "C.UTF-8"
    env.update(extra)
    return env


def board_rows(text: str) -> list[str]:
    """The rows under the last board heading in ``text``, up to the first blank line (or the line
    counting rows left out)."""
    lines = text.splitlines()
    starts = [index for index, line in enumerate(lines) if BOARD_HEADER.match(line)]
    assert starts, f"no board in:\n{text}"
    rows = []
    for line in lines[starts[-1] + 1 :]:
        if not line.strip() or line.startswith("... "):
            break
        rows.append(line)
    return rows


def board_title(text: str) -> str:
    """The line above the last board heading: elapsed time, counts, run, an interruption."""
    lines = text.splitlines()
    starts = [index for index, line in enumerate(lines) if BOARD_HEADER.match(line)]
    assert starts and starts[-1] > 0, f"no board in:\n{text}"
    return lines[starts[-1] - 1]


def final_board(text: str) -> list[str]:
    """The rows of the board's last drawing, the one left above the summary table."""
    return board_rows(text.split(SUMMARY_HEADER)[0])


def summary_lines(text: str) -> list[str]:
    """The summary table's lines after its heading (the last one in ``text``), blank ones left out."""
    assert SUMMARY_HEADER in text, f"no summary table in:\n{text}"
    return [line for line in text.split(SUMMARY_HEADER)[-1].splitlines() if line.strip()]


def row_of(rows: list[str], cluster: str, check: str) -> str:
    """The one row of ``check`` on ``cluster``, trailing blanks cut."""
    found = [line.rstrip() for line in rows if line.split()[:2] == [cluster, check]]
    assert len(found) == 1, f"expected one row for {cluster} {check} in:\n" + "\n".join(rows)
    return found[0]


def assert_no_json_lines(text: str) -> None:
    """No raw JSON event on the terminal."""
    for line in text.splitlines():
        assert not line.lstrip().startswith("{"), f"a raw JSON line on the terminal: {line}\n{text}"
