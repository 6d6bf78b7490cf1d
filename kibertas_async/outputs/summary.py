"""The summary table printed at the end of a run."""

from __future__ import annotations

import sys
from typing import IO

from kibertas_async.compare import Comparison, Timing, VersionPair, outcome_mark
from kibertas_async.results import Outcome, RunReport

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
    if report.comparison is not None:
        lines += [format_comparison(report.comparison), ""]
    for problem in report.plugin_problems:
        lines.append(problem.describe())
    status = "interrupted by " + report.interrupted_by if report.interrupted_by else ("OK" if report.ok else "NG")
    lines.append(f"{status}: {totals or 'nothing ran'} in {report.duration:.1f}s (run {report.run_id})")
    return "\n".join(line.rstrip() for line in lines)


def format_comparison(comparison: Comparison) -> str:
    """The blue/green table: per check both outcomes, then its add-on versions and key step durations
    (those where either side took at least the timing floor) with their ratio; then every regression
    and the verdict."""
    settings = comparison.settings
    rows: list[tuple[str, str, str, str, str]] = [
        ("CHECK / VERSION / STEP", settings.old.upper(), settings.new.upper(), "RATIO", ""),
        _version_row("kubernetes", comparison.kubernetes, indent=""),
    ]
    for check in comparison.checks:
        flagged = any(item.kind == "outcome" for item in check.regressions)
        rows.append(
            (check.check, outcome_mark(check.old), outcome_mark(check.new), "", "REGRESSION" if flagged else "")
        )
        rows += [_version_row(pair.name, pair) for pair in check.versions]
        rows += [_timing_row(timing) for timing in check.timings if timing.key(settings.timing_floor)]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    lines.append(
        f"(regression: not OK on {settings.new} where OK on {settings.old}; a step more than "
        f"{settings.regression_factor:g}x slower, durations under {settings.timing_floor:g}s counted as "
        f"{settings.timing_floor:g}s; an add-on found on one side only)"
    )
    lines += [f"REGRESSION {item.message}" for item in comparison.regressions]
    lines.append(comparison.verdict())
    return "\n".join(line.rstrip() for line in lines)


def _version_row(name: str, pair: VersionPair, indent: str = "  ") -> tuple[str, str, str, str, str]:
    mark = "REGRESSION" if pair.missing_on else ""
    old, new = _short(pair.old), _short(pair.new)
    return (f"{indent}{name} version", old, new, "changed" if pair.changed else "", mark)


def _short(version: str | None) -> str:
    """A version as the table shows it: ``not found (no Deployment ...)`` is ``not found``."""
    return "-" if version is None else version.split(" (", 1)[0]


def _timing_row(timing: Timing) -> tuple[str, str, str, str, str]:
    ratio = f"{timing.ratio:.2f}x" if timing.ratio is not None else "-"
    mark = "REGRESSION" if timing.regression else ""
    return (f"  {timing.name}", f"{timing.old:.1f}s", f"{timing.new:.1f}s", ratio, mark)


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
