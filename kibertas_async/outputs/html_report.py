"""``--report-html PATH``: the run as one self-contained page a person opens after it.

In order: the verdict; a cluster x check grid coloured by outcome (the outcome word is in every cell,
so colour is never the only signal); a timeline of every step, placed by its start and duration
relative to the run's start, so concurrency, exclusive checks and where the time went show at a
glance; the blue/green comparison when the run has one; then every result, failures first, with its
reason, steps, cleanup, facts and diagnostics folded in ``<details>``.

Self-contained: inline CSS, bars as positioned boxes, one small inline script (opens the result a
link points at), and a Content-Security-Policy that lets the page load nothing else. Everything that
comes from a cluster or a plugin (names, reasons, facts, diagnostics) is escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from kibertas_async._version import __version__
from kibertas_async.compare import Comparison, SideResult, Timing, VersionPair
from kibertas_async.results import CheckResult, Diagnostic, Outcome, RunReport, StepResult

MARKS = {
    Outcome.PASSED: "OK",
    Outcome.FAILED: "NG",
    Outcome.ERROR: "ERROR",
    Outcome.TIMEOUT: "TIMEOUT",
    Outcome.SKIPPED: "SKIP",
    Outcome.CANCELLED: "CANCELLED",
}
"""The word a cell shows for each outcome, as the summary table writes it."""

_CSS = """
:root { --ok: #1a7f37; --ng: #cf222e; --error: #8250df; --timeout: #b35900; --skip: #6e7781;
  --fg: #1f2328; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --soft: #f6f8fa; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; padding: 1rem; max-width: 90rem; color: var(--fg); background: var(--bg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; overflow-wrap: anywhere; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.75rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
h3 { font-size: .95rem; margin: .75rem 0 .25rem; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--soft); padding: .5rem; margin: .25rem 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.verdict { border-left: .5rem solid var(--ng); background: #ffebe9; padding: .75rem 1rem; margin: .75rem 0; }
.verdict.ok { border-color: var(--ok); background: #dafbe1; }
.verdict-line { font-size: 1.35rem; font-weight: 700; margin: 0; }
.verdict ul { margin: .4rem 0 0; padding-left: 1.2rem; }
.scroll { overflow-x: auto; max-width: 100%; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
.grid td.cell { min-width: 6.5rem; font-weight: 700; white-space: nowrap; }
.grid td.cell a { color: inherit; text-decoration: none; display: block; }
.grid td.cell .time { font-weight: 400; font-size: .85em; }
.grid td.cell .left { display: block; font-weight: 400; font-size: .8em; }
.outcome-passed { background: #dafbe1; color: #0a5224; }
.outcome-failed { background: #ffebe9; color: #a40e26; }
.outcome-error { background: #fbefff; color: #6639ba; }
.outcome-timeout { background: #fff1e5; color: #953800; }
.outcome-skipped, .outcome-cancelled, .outcome-none { background: var(--soft); color: var(--muted); }
.legend { font-size: .85em; color: var(--muted); margin: .35rem 0; }
.legend span { display: inline-block; padding: 0 .35rem; margin-right: .35rem; border-radius: 3px; }
.timeline .axis, .timeline .row { display: grid; grid-template-columns: minmax(8rem, 15rem) minmax(0, 1fr);
  gap: .5rem; align-items: center; }
.timeline .row { border-top: 1px solid var(--line); padding: .2rem 0; }
.timeline .label { font-size: .85em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.track { position: relative; height: 1.7rem; background: repeating-linear-gradient(90deg, transparent 0,
  transparent calc(25% - 1px), var(--line) calc(25% - 1px), var(--line) 25%); }
.ticks { position: relative; height: 1.1rem; font-size: .75em; color: var(--muted); }
.ticks span { position: absolute; transform: translateX(-50%); white-space: nowrap; }
.ticks span:first-child { transform: none; }
.ticks span:last-child { transform: translateX(-100%); }
.span { position: absolute; top: 0; bottom: 0; background: rgba(84, 174, 255, .18);
  border: 1px dashed rgba(9, 105, 218, .45); border-radius: 3px; }
.bar { position: absolute; top: .3rem; bottom: .3rem; min-width: 3px; border-radius: 2px; overflow: hidden;
  white-space: nowrap; font-size: 10px; line-height: 1.1rem; padding: 0 2px; color: #fff; }
.bar.outcome-passed { background: var(--ok); color: #fff; }
.bar.outcome-failed { background: var(--ng); color: #fff; }
.bar.outcome-error { background: var(--error); color: #fff; }
.bar.outcome-timeout { background: var(--timeout); color: #fff; }
.bar.outcome-skipped, .bar.outcome-cancelled { background: var(--skip); color: #fff; }
.bar + .bar { box-shadow: -1px 0 0 #fff; }
.cleanup-bar { position: absolute; top: .55rem; bottom: .55rem; min-width: 2px; border-radius: 2px;
  background: repeating-linear-gradient(135deg, #8c959f 0, #8c959f 3px, transparent 3px, transparent 6px); }
tr.regression td, li.regression { background: #ffebe9; }
table.comparison td:nth-child(n+2), table.comparison th { white-space: nowrap; overflow-wrap: normal; }
.mark { font-weight: 700; color: var(--ng); }
.changed { font-weight: 600; }
.sub td:first-child { padding-left: 1.5rem; }
details { border: 1px solid var(--line); border-radius: 4px; margin: .4rem 0; padding: 0 .6rem; }
details[open] { padding-bottom: .5rem; }
details > summary { cursor: pointer; padding: .4rem 0; }
details.result.failure { border-left: .35rem solid var(--ng); }
details.result .reason { font-weight: 600; white-space: pre-wrap; }
details.diagnostic { background: var(--soft); }
.problems li { color: #a40e26; }
footer { margin-top: 2rem; font-size: .8em; color: var(--muted); }
@media (max-width: 40rem) {
  body { padding: .6rem; }
  .timeline .axis, .timeline .row { grid-template-columns: minmax(0, 1fr); gap: .1rem; }
  .timeline .axis .label { display: none; }
  .verdict-line { font-size: 1.15rem; }
}
"""

_SCRIPT = (
    "function kaOpen(){var id=decodeURIComponent(location.hash.slice(1));var el=id&&document.getElementById(id);"
    "while(el){if(el.tagName==='DETAILS'){el.open=true;}el=el.parentElement;}}"
    "window.addEventListener('hashchange',kaOpen);kaOpen();"
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_POLICY = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'; img-src data:"
"""Nothing may be loaded from anywhere, and no script runs but ours (its hash)."""

_NOT_OK = (Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT)
_REGRESSION = '<span class="mark">REGRESSION</span>'


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _seconds(value: float) -> str:
    return f"{value:.1f}s"


def _precise(value: float) -> str:
    """Seconds with the digits a ratio of short steps needs (0.04s against 0.09s, not 0.0s against 0.1s)."""
    return f"{value:.2f}s" if value < 10 else f"{value:.1f}s"


def _page(title: str, body: Iterable[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            *body,
            f"<footer>Written by kibertas-async {_e(__version__)}. A single file: it loads nothing.</footer>",
            f"<script>{_SCRIPT}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def render_html(report: RunReport) -> str:
    """The page for a run report."""
    results = {(result.cluster, result.check): index for index, result in enumerate(report.results)}
    body = [
        f"<h1>kibertas-async run <code>{_e(report.run_id)}</code></h1>",
        f'<p class="muted">Started {_e(report.started_at.isoformat(timespec="seconds"))}, '
        f"{len(report.clusters)} cluster{'s' if len(report.clusters) != 1 else ''}, "
        f"{len(report.checks)} check{'s' if len(report.checks) != 1 else ''}.</p>",
        *_verdict(report),
        *_grid(report, results),
        *_timeline(report),
    ]
    if report.comparison is not None:
        body += _comparison(report.comparison)
    body += _results(report)
    return _page(f"kibertas-async {'OK' if report.ok else 'NG'}: run {report.run_id}", body)


def render_comparison_html(comparison: Comparison) -> str:
    """The page for ``compare OLD NEW``: the verdict, the comparison, and why each side's check was not OK."""
    settings = comparison.settings
    body = [
        f"<h1>kibertas-async compare <code>{_e(settings.old)}</code> → <code>{_e(settings.new)}</code></h1>",
        f'<p class="muted">Old: {_e(comparison.old_source)}. New: {_e(comparison.new_source)}.</p>',
        f'<section id="verdict" class="verdict{" ok" if comparison.ok else ""}">',
        f'<p class="verdict-line">{_e(comparison.verdict())}</p>',
        "</section>",
        *_comparison(comparison),
    ]
    failures = [
        (side, check.check, result)
        for check in comparison.checks
        for side, result in ((settings.old, check.old), (settings.new, check.new))
        if result is not None and result.outcome in _NOT_OK
    ]
    if failures:
        body += ['<section id="results">', "<h2>Failures</h2>"]
        for side, name, result in failures:
            body += [
                '<details class="result failure">',
                f"<summary><strong>{MARKS[result.outcome]}</strong> {_e(side)} / {_e(name)}</summary>",
                f'<p class="reason">{_e(result.why())}</p>',
                "</details>",
            ]
        body.append("</section>")
    return _page(f"kibertas-async compare: {comparison.verdict()}", body)


def _totals(report: RunReport) -> str:
    counts = report.counts()
    return ", ".join(f"{count} {outcome.value}" for outcome, count in counts.items() if count)


def _verdict(report: RunReport) -> list[str]:
    status = "interrupted by " + report.interrupted_by if report.interrupted_by else ("OK" if report.ok else "NG")
    line = f"{status}: {_totals(report) or 'nothing ran'} in {_seconds(report.duration)}"
    notes: list[str] = []
    if report.comparison is not None:
        regression = "" if report.comparison.ok else ' class="regression"'
        notes.append(f"<li{regression}>{_e(report.comparison.verdict())}</li>")
    shard = report.shard
    if shard is not None and shard.index is not None:
        notes.append(f"<li>shard {shard.index} of {shard.count}</li>")
    elif shard is not None:
        missing = ", ".join(f"{index}/{shard.count}" for index in shard.missing)
        notes.append(
            f"<li>shards: {len(shard.merged)} of {shard.count} reported"
            + (f"; MISSING: {missing}" if missing else "")
            + "</li>"
        )
    left = [result for result in report.results if result.left_behind]
    if left:
        notes.append(f"<li>{len(left)} check{'s' if len(left) != 1 else ''} may have left objects behind</li>")
    problems = [f"<li>{_e(problem.describe())}</li>" for problem in report.plugin_problems]
    return [
        f'<section id="verdict" class="verdict{" ok" if report.ok else ""}">',
        f'<p class="verdict-line">{_e(line)}</p>',
        *(["<ul>", *notes, "</ul>"] if notes else []),
        *(['<ul class="problems">', *problems, "</ul>"] if problems else []),
        "</section>",
    ]


def _grid(report: RunReport, results: dict[tuple[str, str], int]) -> list[str]:
    lines = ['<section id="grid">', "<h2>Clusters &times; checks</h2>"]
    if not report.clusters or not report.checks:
        return [*lines, '<p class="muted">No checks ran.</p>', "</section>"]
    lines += ['<div class="scroll">', '<table class="grid">', "<thead><tr><th>cluster</th>"]
    lines += [f'<th scope="col">{_e(check)}</th>' for check in report.checks]
    lines.append("</tr></thead><tbody>")
    for cluster in report.clusters:
        version = report.kubernetes_versions.get(cluster)
        header = _e(cluster) + (f' <span class="muted">{_e(version)}</span>' if version else "")
        lines.append(f'<tr><th scope="row">{header}</th>')
        for check in report.checks:
            index = results.get((cluster, check))
            data = f'data-cluster="{_e(cluster)}" data-check="{_e(check)}"'
            if index is None:
                lines.append(
                    f'<td class="cell outcome-none" {data} data-outcome="">— <span class="time">not run</span></td>'
                )
                continue
            result = report.results[index]
            why = f"{result.step}: {result.reason}" if result.step and result.reason else result.reason
            title = f"{result.outcome.value}" + (f" — {why}" if why else "")
            left = '<span class="left">left behind</span>' if result.left_behind else ""
            lines.append(
                f'<td class="cell outcome-{result.outcome.value}" {data} data-outcome="{result.outcome.value}" '
                f'title="{_e(title)}"><a href="#result-{index}">{MARKS[result.outcome]} '
                f'<span class="time">{_seconds(result.duration)}</span>{left}</a></td>'
            )
        lines.append("</tr>")
    lines += ["</tbody></table>", "</div>", _legend(), "</section>"]
    return lines


def _legend() -> str:
    words = [
        (Outcome.PASSED, "passed"),
        (Outcome.FAILED, "failed: the add-on does not work"),
        (Outcome.ERROR, "the check could not do its job"),
        (Outcome.TIMEOUT, "ran out of time"),
        (Outcome.SKIPPED, "skipped"),
    ]
    spans = "".join(
        f'<span class="outcome-{outcome.value}">{MARKS[outcome]}</span>{_e(text)} ' for outcome, text in words
    )
    return f'<p class="legend">{spans}</p>'


def _step_offsets(result: CheckResult, run_start: datetime) -> list[tuple[StepResult, float]]:
    """Each step with its start in seconds after the run's. A report read back from JSON has no step
    starts (each is the check's): its steps are then laid end to end from the check's start."""
    check_start = _offset(result.started_at, run_start)
    steps = result.steps
    if len(steps) > 1 and all(step.started_at == result.started_at for step in steps):
        placed, offset = [], check_start
        for step in steps:
            placed.append((step, offset))
            offset += step.duration
        return placed
    return [(step, _offset(step.started_at, run_start)) for step in steps]


def _timeline(report: RunReport) -> list[str]:
    lines = ['<section id="timeline" class="timeline">', "<h2>Timeline</h2>"]
    if not report.results:
        return [*lines, '<p class="muted">Nothing ran.</p>', "</section>"]
    placed = [_step_offsets(result, report.started_at) for result in report.results]
    end = max(
        [report.duration]
        + [_offset(result.started_at, report.started_at) + result.duration for result in report.results]
        + [offset + step.duration for steps in placed for step, offset in steps]
    )
    scale = _Scale(end if end > 0 else 1.0)
    lines.append(
        '<p class="legend">Each bar is a step, placed by when it started and how long it took, from the '
        "run's start; the dashed band is the whole check; the hatched strip after its last step, its cleanup.</p>"
    )
    digits = 2 if scale.total < 4 else 1  # a short run's quarters must not read alike (0.2s, 0.2s)
    ticks = "".join(f'<span style="left:{q * 25}%">{scale.total * q / 4:.{digits}f}s</span>' for q in range(5))
    lines.append(f'<div class="axis"><div class="label"></div><div class="ticks">{ticks}</div></div>')
    for cluster in report.clusters:
        mine = [index for index, result in enumerate(report.results) if result.cluster == cluster]
        if mine:
            lines.append(f'<h3 class="cluster">{_e(cluster)}</h3>')
        for index in mine:
            result = report.results[index]
            lines.append(
                _timeline_row(index, result, _offset(result.started_at, report.started_at), placed[index], scale)
            )
    lines.append("</section>")
    return lines


def _offset(moment: datetime, run_start: datetime) -> float:
    return (moment - run_start).total_seconds()


class _Scale:
    """Seconds after the run's start as CSS percentages of the timeline's width."""

    def __init__(self, total: float) -> None:
        self.total = total

    def place(self, start: float, duration: float) -> str:
        """``left:..%;width:..%``, kept inside the track."""
        left = max(0.0, min(100.0, 100.0 * start / self.total))
        width = max(0.0, min(100.0 * duration / self.total, 100.0 - left))
        return f"left:{left:.3f}%;width:{width:.3f}%"


def _timeline_row(
    index: int, result: CheckResult, check_start: float, steps: list[tuple[StepResult, float]], scale: _Scale
) -> str:
    """One check on one cluster: its band, a bar per step, and its cleanup after the last step."""
    label = f"{result.check} · {MARKS[result.outcome]} · {_seconds(result.duration)}"
    parts = [
        f'<div class="row" data-cluster="{_e(result.cluster)}" data-check="{_e(result.check)}">'
        f'<div class="label" title="{_e(label)}"><a href="#result-{index}">{_e(result.check)}</a> '
        f'<span class="muted">{MARKS[result.outcome]} {_seconds(result.duration)}</span></div>'
        f'<div class="track"><div class="span" style="{scale.place(check_start, result.duration)}"></div>'
    ]
    for step, offset in steps:
        text = f"{step.name}: {step.outcome.value}, {_seconds(step.duration)} at +{_seconds(offset)}"
        if step.detail:
            text += f" ({step.detail})"
        parts.append(
            f'<div class="bar outcome-{step.outcome.value}" data-step="{_e(step.name)}" '
            f'style="{scale.place(offset, step.duration)}" title="{_e(text)}" role="img" '
            f'aria-label="{_e(text)}">{_e(step.name)}</div>'
        )
    steps_end = max((offset + step.duration for step, offset in steps), default=check_start)
    check_end = check_start + result.duration
    if result.cleanup and check_end > steps_end:
        actions = f"{len(result.cleanup)} action{'s' if len(result.cleanup) != 1 else ''}"
        text = f"cleanup: {actions}, {_seconds(check_end - steps_end)} after the last step"
        parts.append(
            f'<div class="cleanup-bar" style="{scale.place(steps_end, check_end - steps_end)}" '
            f'title="{_e(text)}" role="img" aria-label="{_e(text)}"></div>'
        )
    parts.append("</div></div>")
    return "".join(parts)


def _comparison(comparison: Comparison) -> list[str]:
    settings = comparison.settings
    lines = [
        '<section id="comparison">',
        f"<h2>Blue/green: {_e(settings.old)} → {_e(settings.new)}</h2>",
        f'<p class="verdict-line {"" if comparison.ok else "mark"}">{_e(comparison.verdict())}</p>',
        '<div class="scroll">',
        '<table class="comparison">',
        f"<thead><tr><th>check / version / step</th><th>{_e(settings.old)}</th><th>{_e(settings.new)}</th>"
        "<th>ratio</th><th></th></tr></thead><tbody>",
        _version_row("kubernetes", comparison.kubernetes, sub=False),
    ]
    for check in comparison.checks:
        flagged = any(item.kind == "outcome" for item in check.regressions)
        lines.append(
            f'<tr class="check{" regression" if flagged else ""}" data-check="{_e(check.check)}">'
            f"<td><strong>{_e(check.check)}</strong></td>{_outcome_cell(check.old)}{_outcome_cell(check.new)}"
            f"<td></td><td>{_REGRESSION if flagged else ''}</td></tr>"
        )
        lines += [_version_row(f"{pair.name} version", pair) for pair in check.versions]
        lines += [_timing_row(timing) for timing in check.timings]
    lines += ["</tbody></table>", "</div>"]
    lines.append(
        f'<p class="legend">A regression: not OK on {_e(settings.new)} where OK on {_e(settings.old)}; a step more '
        f"than {settings.regression_factor:g}x slower (durations under {settings.timing_floor:g}s counted as "
        f"{settings.timing_floor:g}s); an add-on found on one side only. A changed version is shown, "
        "not a regression.</p>"
    )
    if comparison.regressions:
        lines.append('<ul class="regressions">')
        lines += [f'<li class="regression">{_e(item.message)}</li>' for item in comparison.regressions]
        lines.append("</ul>")
    lines.append("</section>")
    return lines


def _outcome_cell(result: SideResult | None) -> str:
    if result is None:
        return '<td class="outcome-none">—</td>'
    why = result.why()
    title = f' title="{_e(why)}"' if why else ""
    return f'<td class="outcome-{result.outcome.value}"{title}><strong>{MARKS[result.outcome]}</strong></td>'


def _version_row(name: str, pair: VersionPair, *, sub: bool = True) -> str:
    missing = pair.missing_on is not None
    classes = " ".join(part for part in ("sub" if sub else "", "version", "regression" if missing else "") if part)
    changed = '<span class="changed">changed</span>' if pair.changed else ""
    mark = _REGRESSION if missing else ""
    return (
        f'<tr class="{classes}"><td>{_e(name)}</td>{_version_cell(pair.old)}{_version_cell(pair.new)}'
        f"<td>{changed}</td><td>{mark}</td></tr>"
    )


def _version_cell(version: str | None) -> str:
    """A version as the summary table shows it (``not found (no Deployment ...)`` is ``not found``), the
    whole text in its tooltip."""
    if version is None:
        return "<td>—</td>"
    short = version.split(" (", 1)[0]
    title = f' title="{_e(version)}"' if short != version else ""
    return f"<td{title}>{_e(short)}</td>"


def _timing_row(timing: Timing) -> str:
    ratio = f"{timing.ratio:.2f}x" if timing.ratio is not None else "—"
    classes = "sub timing regression" if timing.regression else "sub timing"
    mark = _REGRESSION if timing.regression else ""
    return (
        f'<tr class="{classes}" data-step="{_e(timing.name)}"><td>{_e(timing.name)}</td>'
        f"<td>{_precise(timing.old)}</td><td>{_precise(timing.new)}</td><td>{ratio}</td><td>{mark}</td></tr>"
    )


def _results(report: RunReport) -> list[str]:
    if not report.results:
        return []
    order = sorted(
        range(len(report.results)),
        key=lambda index: (report.results[index].outcome not in _NOT_OK, index),
    )
    lines = ['<section id="results">', "<h2>Results</h2>"]
    for index in order:
        lines += _result(index, report.results[index])
    lines.append("</section>")
    return lines


def _result(index: int, result: CheckResult) -> list[str]:
    failure = result.outcome in _NOT_OK
    why = f"{result.step}: {result.reason}" if result.step and result.reason else result.reason or (result.step or "")
    summary = (
        f"<strong>{MARKS[result.outcome]}</strong> {_e(result.cluster)} / {_e(result.check)} "
        f'<span class="muted">{_seconds(result.duration)}</span>' + (f" — {_e(why)}" if why else "")
    )
    lines = [
        f'<details class="result{" failure" if failure else ""}" '
        f'id="result-{index}" data-cluster="{_e(result.cluster)}" data-check="{_e(result.check)}">',
        f"<summary>{summary}</summary>",
    ]
    if result.reason:
        step = f"in step <em>{_e(result.step)}</em>: " if result.step else ""
        lines.append(f'<p class="reason">{step}{_e(result.reason)}</p>')
    lines += _diagnostics(result.diagnostics)
    if result.steps:
        lines.append(
            '<div class="scroll"><table class="steps"><thead><tr><th>step</th><th>outcome</th>'
            "<th>time</th><th>last observed</th></tr></thead><tbody>"
        )
        lines += [
            f'<tr><td>{_e(step.name)}</td><td class="outcome-{step.outcome.value}">{MARKS[step.outcome]}</td>'
            f"<td>{_seconds(step.duration)}</td><td>{_e(step.detail)}</td></tr>"
            for step in result.steps
        ]
        lines.append("</tbody></table></div>")
    if result.cleanup:
        lines.append('<h3>Cleanup</h3><ul class="cleanup">')
        lines += [
            f"<li>{_e(item.description)}: <strong>{_e(item.status)}</strong>"
            + (f" ({_e(item.detail)})" if item.detail else "")
            + "</li>"
            for item in result.cleanup
        ]
        lines.append("</ul>")
    if result.facts:
        lines.append('<h3>Facts</h3><div class="scroll"><table class="facts"><tbody>')
        lines += [f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>" for key, value in result.facts.items()]
        lines.append("</tbody></table></div>")
    lines.append(f'<p class="muted">{result.api_requests} Kubernetes API requests.</p>')
    lines.append("</details>")
    return lines


def _diagnostics(diagnostics: Sequence[Diagnostic]) -> list[str]:
    """What was collected to explain a failure, most telling first, each folded on its own."""
    lines: list[str] = []
    for item in diagnostics:
        title, source = item.title or "diagnostic", item.source
        text = "\n".join(item.lines)
        lines += [
            '<details class="diagnostic">',
            f"<summary>{_e(title)}" + (f' <span class="muted">{_e(source)}</span>' if source else "") + "</summary>",
            f"<pre>{_e(text)}</pre>",
            "</details>",
        ]
    return lines


class HtmlReporter:
    """Writes :func:`render_html` to a file."""

    name = "html"

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, report: RunReport) -> None:
        """Write the page atomically: a reader never sees half of it."""
        write_page(self.path, render_html(report))


def write_page(path: Path, page: str) -> None:
    """Write ``page`` to ``path`` atomically."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)
