"""The Chatwork message for a run: a pure function of the :class:`~kibertas_async.RunReport`.

One ``[info]`` box per run. Its title says OK or NG, how many clusters and checks, and the run id.
Then one block per cluster with one line per check::

    [info][title]kibertas-async NG — 2 clusters × 2 checks (run 20261126-ab12c)[/title]■ prod-a — NG
    OK ingress (12.3s)
    NG cert-manager (45.0s) — step 'wait for leaf certificate': Secret sample-tls has no tls.crt
      why: waited on Certificate cert-manager-test-x/sample-cert: Ready=False (Issuing): ...
      why: workload cert-manager/cert-manager: 0/1 replicas ready
    [hr]■ prod-b — OK
    OK ingress (10.1s)
    OK cert-manager (30.2s)
    [hr]OK 3 · NG 1 — 1m 28s[/info]

A check that did not pass gets up to :data:`DIAGNOSTIC_LINES` ``why:`` lines: the titles of its most
telling diagnostics (:mod:`kibertas_async.diagnostics`). When the message would be too long, the details
(reasons, facts, diagnostics, what cleanup left behind) are shortened first, then dropped (diagnostics
entirely); the line of each check, with its OK/NG mark, is always kept.

A blue/green run (``run --compare old,new``) says the comparison's verdict in the title and starts with
a block of its own: every regression (a line each, always kept), then what changed (versions), then
each check's outcomes on both sides with its key step durations and their ratio (details, shortened
first)::

    [info][title]kibertas-async NG — blue/green old → new: 1 regression (run r1)[/title]■ old → new — NG
    REGRESSION ingress — ingress: NG on new (resolve host: NXDOMAIN), OK on old
    versions — kubernetes v1.30.4 → v1.31.0
    ingress OK → NG — wait for load balancer 2.0s → 2.2s (1.1x)
    [hr]■ old — OK
    ...
"""  # noqa: RUF002 (the multiplication sign is what the title shows)

from __future__ import annotations

import re
from dataclasses import dataclass

from kibertas_async import CheckResult, Comparison, Outcome, RunReport, outcome_mark

MAX_MESSAGE_CHARS = 10_000
"""Longest message we send. Chatwork does not document its limit (messages of 40,000 characters have
been reported to pass and of 80,000 to be refused with 400); a summary read on a phone should be far
shorter anyway."""

OUTCOME_MARKS = {
    Outcome.PASSED: "OK",
    Outcome.FAILED: "NG",
    Outcome.ERROR: "ERROR",
    Outcome.TIMEOUT: "TIMEOUT",
    Outcome.SKIPPED: "SKIP",
}
"""The word that starts each check's line."""

DIAGNOSTIC_LINES = 2
"""Diagnostics shown per check that did not pass: the first ones, which are the most telling."""

DETAIL_LIMITS = (400, 160, 60, 0)
"""Longest detail (a reason, facts, the list of what was left behind) tried in turn until the message
fits; at 0 details are left out."""

_CHATWORK_TAG = re.compile(
    r"\[(?=/?(?:info|title|code|hr|qt|To:|toall|rp|piconname|picon|download|preview|dtext|task)\b)",
    re.IGNORECASE,
)
_WHITESPACE = re.compile(r"\s+")


def format_message(report: RunReport, *, max_chars: int = MAX_MESSAGE_CHARS) -> str:
    """The message body for ``report``, in Chatwork markup, at most ``max_chars`` characters long."""
    title = _title(report)
    sections = _sections(report)
    footer = _footer(report)
    body = ""
    for limit in DETAIL_LIMITS:
        body = _render(title, sections, footer, limit)
        if len(body) <= max_chars:
            return body
    # Hundreds of checks: count the passed ones per cluster, list only those that are not OK.
    body = _render(title, [_collapse_passed(section) for section in sections], footer, 0)
    return body if len(body) <= max_chars else _cut(body, max_chars)


def neutralize_markup(text: str) -> str:
    """``text`` with Chatwork tags disarmed, so that a reason cannot close the box or mention people.

    Chatwork has no escape character; a full-width bracket looks the same to a reader and is not a tag.
    """
    return _CHATWORK_TAG.sub("\N{FULLWIDTH LEFT SQUARE BRACKET}", text)


def format_duration(seconds: float) -> str:
    """``12.3s``, ``4m 05s`` or ``1h 02m``: short enough for a phone screen."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


@dataclass(frozen=True)
class _Line:
    """One line of the message: ``head`` is always shown; ``detail`` is shortened or dropped to fit."""

    head: str
    detail: str = ""
    joiner: str = " — "
    without_detail: str | None = None
    """What to show instead when details are dropped (default: ``head`` alone)."""
    passed: bool = False
    """The line of a check that passed: may be folded into a count when space runs out."""
    optional: bool = False
    """Left out altogether when details are dropped (a diagnostic)."""

    def render(self, limit: int) -> str:
        if self.optional and limit <= 0:
            return ""
        if not self.detail:
            return self.head
        if limit <= 0:
            return self.head if self.without_detail is None else self.without_detail
        return f"{self.head}{self.joiner}{_shorten(self.detail, limit)}"


def _title(report: RunReport) -> str:
    verdict = "OK" if report.ok else "NG"
    comparison = report.comparison
    if comparison is not None:
        count = len(comparison.regressions)
        found = _plural(count, "regression") if count else "no regression"
        where = f"{comparison.settings.old} \N{RIGHTWARDS ARROW} {comparison.settings.new}"
        return neutralize_markup(f"kibertas-async {verdict} — blue/green {where}: {found} (run {report.run_id})")
    clusters = _plural(len(report.clusters), "cluster")
    checks = _plural(len(report.checks), "check")
    return neutralize_markup(
        f"kibertas-async {verdict} — {clusters} \N{MULTIPLICATION SIGN} {checks} (run {report.run_id})"
    )


def _sections(report: RunReport) -> list[list[_Line]]:
    sections: list[list[_Line]] = []
    notices = _notices(report)
    if notices:
        sections.append(notices)
    if report.comparison is not None:
        sections.append(_comparison_lines(report.comparison))
    for cluster, results in _by_cluster(report).items():
        verdict = "OK" if all(result.outcome.ok for result in results) else "NG"
        lines = [_Line(neutralize_markup(f"■ {cluster} — {verdict}"))]
        if not results:
            lines.append(_Line("no check ran"))
        for result in results:
            lines.extend(_check_lines(result))
        sections.append(lines)
    return sections


def _notices(report: RunReport) -> list[_Line]:
    notices: list[_Line] = []
    if report.interrupted_by is not None:
        notices.append(
            _Line(f"Interrupted by {report.interrupted_by}: checks still running were stopped and cleaned up.")
        )
    for problem in report.plugin_problems:
        notices.append(
            _Line(
                neutralize_markup(
                    f"Plugin {problem.plugin}: {problem.hook} raised"
                    if problem.hook
                    else f"Plugin {problem.plugin} failed to load; its checks did not run"
                ),
                detail=neutralize_markup(_one_line(problem.error)),
            )
        )
    return notices


def _comparison_lines(comparison: Comparison) -> list[_Line]:
    """Verdict, every regression, what changed, then each check on both sides with its key timings."""
    settings = comparison.settings
    arrow = " \N{RIGHTWARDS ARROW} "
    lines = [_Line(neutralize_markup(f"■ {settings.old}{arrow}{settings.new} — {'OK' if comparison.ok else 'NG'}"))]
    for regression in comparison.regressions:
        lines.append(
            _Line(
                neutralize_markup(f"REGRESSION {regression.check}"),
                detail=neutralize_markup(_one_line(regression.message)),
            )
        )
    changes = [f"{pair.name} {pair.old}{arrow}{pair.new}" for _check, pair in comparison.version_changes]
    if changes:
        lines.append(_Line("versions", detail=neutralize_markup(_one_line(", ".join(changes)))))
    for check in comparison.checks:
        timings = ", ".join(
            f"{timing.name} {format_duration(timing.old)}{arrow}{format_duration(timing.new)}"
            + (f" ({timing.ratio:.1f}x)" if timing.ratio is not None else "")
            for timing in check.timings
            if timing.key(settings.timing_floor)
        )
        head = f"{check.check} {outcome_mark(check.old)}{arrow.rstrip()} {outcome_mark(check.new)}"
        lines.append(_Line(neutralize_markup(head), detail=neutralize_markup(timings)))
    return lines


def _by_cluster(report: RunReport) -> dict[str, list[CheckResult]]:
    """Results grouped by cluster, clusters and checks in the order of the run."""
    grouped: dict[str, list[CheckResult]] = {cluster: [] for cluster in report.clusters}
    for result in report.results:
        grouped.setdefault(result.cluster, []).append(result)
    return grouped


def _check_lines(result: CheckResult) -> list[_Line]:
    head = neutralize_markup(f"{OUTCOME_MARKS[result.outcome]} {result.check} ({format_duration(result.duration)})")
    if result.outcome is Outcome.PASSED:
        facts = ", ".join(f"{key}: {value}" for key, value in result.facts.items())
        lines = [_Line(head, detail=neutralize_markup(_one_line(facts)), passed=True)]
    else:
        step = neutralize_markup(f"step '{result.step}'") if result.step else ""
        reason = neutralize_markup(_one_line(result.reason))
        if step and reason:
            lines = [_Line(f"{head} — {step}", detail=reason, joiner=": ")]
        else:
            lines = [_Line(head, detail=step or reason)]
    for diagnostic in result.diagnostics[:DIAGNOSTIC_LINES] if not result.outcome.ok else []:
        lines.append(
            _Line(
                "  why",
                detail=neutralize_markup(_one_line(f"{diagnostic.source}: {diagnostic.title}")),
                joiner=": ",
                optional=True,
            )
        )
    left = result.left_behind
    if left:
        listed = ", ".join(f"{item.description} ({item.status})" for item in left)
        lines.append(
            _Line(
                "  left behind",
                detail=neutralize_markup(_one_line(listed)),
                joiner=": ",
                without_detail=f"  left behind: {_plural(len(left), 'object')}",
            )
        )
    return lines


def _footer(report: RunReport) -> str:
    counts = " · ".join(f"{OUTCOME_MARKS[outcome]} {count}" for outcome, count in report.counts().items() if count)
    return f"{counts or 'nothing ran'} — {format_duration(report.duration)}"


def _render(title: str, sections: list[list[_Line]], footer: str, limit: int) -> str:
    blocks = ["\n".join(text for line in section if (text := line.render(limit))) for section in sections]
    inner = "\n[hr]".join([*blocks, footer])
    return f"[info][title]{title}[/title]{inner}[/info]"


def _collapse_passed(section: list[_Line]) -> list[_Line]:
    passed = sum(1 for line in section if line.passed)
    if not passed:
        return section
    header, *rest = section
    return [header, _Line(f"OK {_plural(passed, 'check')}"), *(line for line in rest if not line.passed)]


def _cut(body: str, max_chars: int) -> str:
    """Last resort: keep the title and as many whole lines as fit, and close the box."""
    ending = "\n… (cut to fit; the run's report has every result)[/info]"
    title_end = body.index("[/title]") + len("[/title]")
    kept = body[: max(title_end, max_chars - len(ending))]
    last_line_end = kept.rfind("\n")
    if last_line_end > title_end:
        kept = kept[:last_line_end]
    return kept + ending


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def _one_line(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
