"""Running every diagnostics source for one result: concurrently, shielded, time-boxed, bounded, redacted."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio

from kibertas_async.diagnostics.sources import (
    MAX_DIAGNOSTICS,
    MAX_LINE_CHARS,
    MAX_LINES,
    DiagnosticsContext,
    DiagnosticSource,
)
from kibertas_async.results import Diagnostic, PluginProblem

if TYPE_CHECKING:
    from kibertas_async.events import SecretRedactor

_WHITESPACE = re.compile(r"\s+")


def one_line(text: object, limit: int = MAX_LINE_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters (``…`` marks a cut)."""
    flat = _WHITESPACE.sub(" ", str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def bounded(diagnostic: Diagnostic, redactor: SecretRedactor | None = None) -> Diagnostic:
    """``diagnostic`` within the size limits, every text redacted (a line holding several lines is split)."""

    def clean(text: object) -> str:
        return one_line(redactor.text(str(text)) if redactor is not None else str(text))

    lines = [clean(part) for line in diagnostic.lines for part in str(line).splitlines() if part.strip()]
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], f"… {len(lines) - MAX_LINES + 1} more lines"]
    return Diagnostic(source=clean(diagnostic.source), title=clean(diagnostic.title), lines=lines)


def select(per_source: Sequence[Sequence[Diagnostic]], limit: int = MAX_DIAGNOSTICS) -> list[Diagnostic]:
    """At most ``limit`` diagnostics, fairly: every source's first, then every source's second, and so on
    (each source returns its own most telling first, so the list is most telling first)."""
    chosen: list[Diagnostic] = []
    depth = 0
    while len(chosen) < limit and any(depth < len(found) for found in per_source):
        for found in per_source:
            if depth < len(found) and len(chosen) < limit:
                chosen.append(found[depth])
        depth += 1
    return chosen


async def collect_diagnostics(
    sources: Sequence[tuple[str, DiagnosticSource]],
    context: DiagnosticsContext,
    *,
    redactor: SecretRedactor | None = None,
    on_problem: Callable[[PluginProblem], None] | None = None,
) -> list[Diagnostic]:
    """Await every ``(plugin, source)``'s ``collect`` at once, until ``context.deadline`` at the latest,
    shielded from cancellation (a check cancelled by the run's deadline is still explained). A source that
    raises is reported through ``on_problem`` and contributes nothing; one still running at the deadline
    is left out. Never raises."""
    found: list[list[Diagnostic]] = [[] for _ in sources]

    async def run_one(index: int, plugin: str, source: DiagnosticSource) -> None:
        try:
            answer = await source.collect(context)
        except Exception as error:
            if on_problem is not None:
                name = getattr(source, "name", type(source).__name__)
                on_problem(PluginProblem(plugin, f"{type(error).__name__}: {error}", f"diagnostics {name!r} collect"))
            return
        found[index] = [bounded(item, redactor) for item in answer or [] if isinstance(item, Diagnostic)]

    with anyio.CancelScope(shield=True), anyio.move_on_after(context.time_left()):
        async with anyio.create_task_group() as group:
            for index, (plugin, source) in enumerate(sources):
                group.start_soon(run_one, index, plugin, source)
    return select(found)
