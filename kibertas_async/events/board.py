"""The live board: what a run is doing, one row per cluster and check, redrawn in place on a terminal.

It keeps no state the engine keeps elsewhere; it listens to two things:

- the plugin hooks, for what the engine decided: which clusters and checks run (``run_started``), how each
  check ended (``check_finished``, also for a check stopped before it started), and that the run is
  over (``run_finished``: the board stops there, so the summary table and the comparison print below it);
- the event stream, for what is happening meanwhile: ``check.started``, ``step.started``,
  ``step.progress`` (the last observation), ``step.finished``, ``cleanup.*``, ``run.interrupted``.
  Warnings and errors are printed as console lines above the board, which stays at the bottom.

A row is one line whatever the terminal's width: the step and what was last seen are cut short (with
an ellipsis) before the cluster, check, result and time are; when the rows outnumber the terminal's
lines, the running and failed ones are shown and the rest counted. Rendering (rich's ``Live``, its own
thread, four times a second) reads a snapshot taken under a lock, so an event never meets a half-drawn row.
The board follows the terminal's size as it changes; a terminal that reflows its lines when made
narrower (tmux does) may keep the remains of the drawing before above it, the board itself is whole.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from kibertas_async._markers import hookimpl
from kibertas_async.results import CheckResult, Outcome, RunInfo, RunReport

__all__ = ["LiveBoard"]

_MARKS = {
    Outcome.PASSED: ("OK", "bold green"),
    Outcome.FAILED: ("NG", "bold red"),
    Outcome.ERROR: ("ERROR", "bold red"),
    Outcome.TIMEOUT: ("TIMEOUT", "bold yellow"),
    Outcome.SKIPPED: ("SKIP", "dim"),
}
"""The marks of the summary table, for a finished row."""
_STATES = {"waiting": "dim", "running": "cyan", "cleanup": "magenta"}
"""What an unfinished row's RESULT says, and its style."""
_CHROME_LINES = 3
"""Lines the board takes besides its rows: its title, the column headings, a "more" line."""


@dataclasses.dataclass
class _Row:
    """One check on one cluster, as far as the board knows."""

    cluster: str
    check: str
    started: float | None = None
    """``time.monotonic()`` when ``check.started`` arrived."""
    open_steps: list[str] = dataclasses.field(default_factory=list)
    """Steps started and not finished, innermost last."""
    step: str = ""
    detail: str = ""
    cleaning: bool = False
    result: CheckResult | None = None

    @property
    def state(self) -> str:
        """``waiting``, ``running``, ``cleanup`` or ``finished``."""
        if self.result is not None:
            return "finished"
        if self.cleaning:
            return "cleanup"
        return "waiting" if self.started is None else "running"


class LiveBoard:
    """The board on ``stream`` (a terminal); a context manager that shows it, and a plugin of the run.

    Off a terminal (``--log-format live`` into a file) nothing is redrawn: the lines are printed as they
    come, and the board once, when it stops.
    """

    plugin_name = "kibertas_async.events.board"
    """The name it is registered under with the plugin manager (plugin problems name it so)."""

    def __init__(self, stream: IO[str], *, refresh_per_second: float = 4) -> None:
        self._console = Console(file=stream, highlight=False, soft_wrap=False)
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], _Row] = {}
        self._run_id = ""
        self._started = time.monotonic()
        self._finished: RunReport | None = None
        self._interrupted_by: str | None = None
        self._abandoned = False
        self._live = Live(
            console=self._console,
            get_renderable=self._render,
            refresh_per_second=refresh_per_second,
            # Stray writes to the terminal (a dependency's print) go above the board, not through it;
            # standard output only when it is a terminal too, or its text would land on stderr.
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=True,
            vertical_overflow="crop",
        )

    def __enter__(self) -> LiveBoard:
        self._live.start(refresh=True)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Draw the board a last time and leave it on the screen; lines printed after it go below it.
        Safe to call more than once."""
        self._live.stop()

    # --- the event stream (kibertas_async.events.EventBoard) ------------------------------------

    def observe(self, event: Mapping[str, Any]) -> None:
        """Take in one event: the steps, the last observation and the cleanup of each row."""
        name = str(event.get("event", ""))
        with self._lock:
            if name == "run.interrupted":
                self._interrupted_by = str(event.get("signal", "a signal"))
            elif name == "cleanup.abandoned" and "check" not in event:
                self._abandoned = True
            cluster, check = event.get("cluster"), event.get("check")
            if not isinstance(cluster, str) or not isinstance(check, str):
                return
            row = self._row(cluster, check)
            step = str(event.get("step", ""))
            if name == "check.started":
                row.started = time.monotonic()
            elif name == "step.started":
                row.open_steps.append(step)
                row.step, row.detail = step, ""
            elif name == "step.progress":
                row.detail = str(event.get("detail", ""))
            elif name == "step.finished":
                if step in row.open_steps:
                    del row.open_steps[len(row.open_steps) - 1 - row.open_steps[::-1].index(step)]
                row.step = row.open_steps[-1] if row.open_steps else step
            elif name.startswith("cleanup."):
                row.cleaning = True
                row.step, row.detail = "cleanup", f"{name.removeprefix('cleanup.')}: {event.get('action', '')}"

    def print_line(self, line: str) -> None:
        """Print one rendered event above the board (below it once it stopped)."""
        self._console.print(Text.from_ansi(line), soft_wrap=True)

    # --- the hooks --------------------------------------------------------------------------------

    @hookimpl
    def kibertas_async_run_started(self, run: RunInfo) -> None:
        """A row for every cluster and check, in the run's order, waiting."""
        with self._lock:
            self._run_id = run.run_id
            self._started = time.monotonic()
            for cluster in run.clusters:
                for check in run.checks:
                    self._row(cluster, check)

    @hookimpl
    def kibertas_async_check_finished(self, result: CheckResult) -> None:
        """The row's outcome, duration, and where and why it did not pass."""
        with self._lock:
            self._row(result.cluster, result.check).result = result

    @hookimpl
    def kibertas_async_run_finished(self, report: RunReport) -> None:
        """The run is over: the board's last drawing, before the reporters print."""
        with self._lock:
            self._finished = report
        if self._live.is_started:
            self.stop()
            self._console.line()  # the summary table is not part of the board

    # --- drawing ------------------------------------------------------------------------------------

    def _row(self, cluster: str, check: str) -> _Row:
        row = self._rows.get((cluster, check))
        if row is None:
            row = self._rows[(cluster, check)] = _Row(cluster, check)
        return row

    def _render(self) -> RenderableType:
        now = time.monotonic()
        with self._lock:
            rows = [dataclasses.replace(row) for row in self._rows.values()]
            title = self._title(rows, now)
        budget = max(1, self._console.size.height - _CHROME_LINES)
        shown, hidden = _fit(rows, budget)
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 1, 0, 0))
        for heading in ("CLUSTER", "CHECK", "RESULT"):
            table.add_column(_cell(heading), no_wrap=True, overflow="ellipsis")
        table.add_column(_cell("TIME"), no_wrap=True, justify="right")
        # Wrappable as columns, so rich narrows these two first; each cell is one line (see _cell).
        table.add_column(_cell("STEP"), min_width=4)
        table.add_column(_cell("LAST SEEN / WHY"), min_width=4)
        for row in shown:
            table.add_row(*_cells(row, now))
        parts: list[RenderableType] = [title, table]
        if hidden:
            counts = _counts(hidden)
            parts.append(_cell(f"... {len(hidden)} more: {counts}", "dim"))
        return Group(*parts)

    def _title(self, rows: list[_Row], now: float) -> Text:
        elapsed = (self._finished.duration if self._finished is not None else now - self._started) or 0.0
        clusters = len({row.cluster for row in rows})
        checks = len({row.check for row in rows})
        # What matters most first: a narrow terminal cuts the end.
        text = f"{elapsed:.0f}s  {_counts(rows)}  run {self._run_id}: {clusters} cluster(s) x {checks} check(s)"
        if self._interrupted_by is None:
            return _cell(text, "bold")
        after = "cleanup abandoned" if self._abandoned else "cleaning up (send it again to abandon cleanup)"
        return _cell(f"interrupted by {self._interrupted_by}, {after}  {text}", "bold yellow")


def _cells(row: _Row, now: float) -> tuple[Text, ...]:
    result = row.result
    if result is not None:
        mark, style = _MARKS[result.outcome]
        last = result.steps[-1] if result.steps else None
        where = result.step or (last.name if last is not None else "")
        why = result.reason or (last.detail if last is not None else "")
        left = ", ".join(item.description for item in result.left_behind)
        why = f"{why} [left behind: {left}]".strip() if left else why
        elapsed = result.duration
    else:
        mark, style = row.state, _STATES[row.state]
        where, why = row.step, row.detail
        elapsed = 0.0 if row.started is None else now - row.started
    time_text = "" if result is None and row.started is None else f"{elapsed:.1f}s"
    return (
        _cell(row.cluster, "bold"),
        _cell(row.check),
        _cell(mark, style),
        _cell(time_text),
        _cell(where),
        _cell(" ".join(why.split()), "dim" if result is None or result.outcome.ok else "red"),
    )


def _cell(text: str, style: str = "") -> Text:
    """One line, cut with an ellipsis where the column ends: a row never wraps."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _fit(rows: list[_Row], budget: int) -> tuple[list[_Row], list[_Row]]:
    """The rows to show (in the run's order) and those left out when there are more than ``budget``:
    running and cleaning first, then the ones that did not pass, then waiting, then passed."""
    if len(rows) <= budget:
        return rows, []
    order = {"running": 0, "cleanup": 0, "waiting": 2}

    def rank(row: _Row) -> int:
        if row.result is None:
            return order[row.state]
        return 3 if row.result.outcome.ok else 1

    # One line goes to saying how many are left out.
    keep = set(map(id, sorted(rows, key=rank)[: max(0, budget - 1)]))
    return [row for row in rows if id(row) in keep], [row for row in rows if id(row) not in keep]


def _counts(rows: list[_Row]) -> str:
    """``2 running, 1 waiting, 3 OK, 1 NG``: the states and marks present, in that order."""
    tally: dict[str, int] = {}
    for row in rows:
        key = row.state if row.result is None else _MARKS[row.result.outcome][0]
        tally[key] = tally.get(key, 0) + 1
    order = ["running", "cleanup", "waiting", *(mark for mark, _ in _MARKS.values())]
    return ", ".join(f"{tally[key]} {key}" for key in order if key in tally)
