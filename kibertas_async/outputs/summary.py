"""The summary table printed at the end of a run."""

from __future__ import annotations

import sys
from typing import IO

from kibertas_async.engine.results import Outcome, RunReport

_MARK = {
    Outcome.PASSED: "OK",
    Outcome.FAILED: "NG",
    Outcome.ERROR: "ERROR",
    Outcome.TIMEOUT: "TIMEOUT",
    Outcome.SKIPPED: "SKIP",
}


def format_summary(report: RunReport) -> str:
    """A plain-text table: one row per cluster and check, then a totals line."""
    rows = [("CLUSTER", "CHECK", "RESULT", "TIME", "WHERE / WHY")]
    for result in sorted(report.results, key=lambda r: (r.cluster, r.check)):
        why = f"{result.step}: {result.reason}" if result.step and result.reason else result.reason
        left = result.left_behind
        if left:
            why = f"{why} [left behind: {', '.join(item.description for item in left)}]".strip()
        rows.append((result.cluster, result.check, _MARK[result.outcome], f"{result.duration:.1f}s", why))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    counts = report.counts()
    totals = ", ".join(f"{count} {outcome.value}" for outcome, count in counts.items() if count)
    lines.append("")
    for problem in report.plugin_problems:
        lines.append(problem.describe())
    status = "interrupted by " + report.interrupted_by if report.interrupted_by else ("OK" if report.ok else "NG")
    lines.append(f"{status}: {totals or 'nothing ran'} in {report.duration:.1f}s (run {report.run_id})")
    return "\n".join(line.rstrip() for line in lines)


class SummaryReporter:
    """Prints :func:`format_summary` on standard output."""

    name = "summary"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    def write(self, report: RunReport) -> None:
        """Print the table."""
        stream = self._stream or sys.stdout
        stream.write(format_summary(report) + "\n")
        stream.flush()
