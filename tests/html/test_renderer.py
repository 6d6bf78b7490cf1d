"""The HTML report's renderer without a browser: structure, escaping, an empty report, plugin problems,
diagnostics, the comparison, and the command-line options that write it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kibertas_async.compare import ComparisonSettings, compare_run
from kibertas_async.outputs.html_report import HtmlReporter, render_comparison_html, render_html
from kibertas_async.outputs.json_report import report_from_dict, report_to_dict
from kibertas_async.results import (
    CHECK_OUTCOMES,
    CheckResult,
    CleanupResult,
    Diagnostic,
    Outcome,
    PluginProblem,
    RunReport,
    ShardInfo,
    StepResult,
)
from tests.conftest import RunCli

START = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'


class Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text: enough to assert on without a browser."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {key: value or "" for key, value in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        """The attributes of each ``tag`` whose attributes include ``wanted`` (``class_`` for class, a word of it)."""
        found = []
        for name, attrs in self.tags:
            if name != tag:
                continue
            if "class_" in wanted and wanted["class_"] not in attrs.get("class", "").split():
                continue
            if all(attrs.get(key.replace("_", "-")) == value for key, value in wanted.items() if key != "class_"):
                found.append(attrs)
        return found


def step(name: str, at: float, seconds: float, outcome: Outcome = Outcome.PASSED, detail: str = "") -> StepResult:
    return StepResult(name, START + timedelta(seconds=at), seconds, outcome, detail)


def sample_report(**changes: object) -> RunReport:
    """Two clusters, two checks: one NG on ``new`` with a reason, diagnostics and a cleanup left behind."""
    failed = CheckResult(
        "ingress",
        "new",
        Outcome.FAILED,
        START + timedelta(seconds=1),
        duration=6.0,
        step="resolve host",
        reason="resolves to 10.0.0.9, not 127.0.0.12",
        steps=[step("create Ingress", 1.0, 2.0), step("resolve host", 3.0, 3.5, Outcome.FAILED, "10.0.0.9")],
        cleanup=[CleanupResult("delete Namespace ingress-test", "timed out", "still terminating")],
        facts={"external-dns version": "v0.21.0"},
        api_requests=12,
    )
    failed.diagnostics = [Diagnostic("events ingress-test", "Warning SyncFailed", ["line 1", "line 2"])]
    report = RunReport(
        run_id="run-1",
        started_at=START,
        clusters=["old", "new"],
        checks=["ingress", "datadog-agent"],
        results=[
            CheckResult(
                "ingress",
                "old",
                Outcome.PASSED,
                START,
                duration=4.0,
                steps=[step("create Ingress", 0.0, 1.5), step("resolve host", 1.5, 2.0)],
                facts={"external-dns version": "v0.20.0"},
            ),
            failed,
            CheckResult("datadog-agent", "old", Outcome.PASSED, START, 1.0, steps=[step("query metrics", 0.0, 1.0)]),
            CheckResult("datadog-agent", "new", Outcome.SKIPPED, START, 0.0, reason="does not apply"),
        ],
        duration=8.0,
        kubernetes_versions={"old": "v1.35.0", "new": "v1.36.3"},
    )
    for key, value in changes.items():
        setattr(report, key, value)
    return report


def test_the_verdict_comes_first_and_the_grid_has_a_cell_per_cluster_and_check() -> None:
    page = render_html(sample_report())
    elements = Elements(page)

    assert page.index('id="verdict"') < page.index('id="grid"') < page.index('id="timeline"')
    (verdict,) = elements.having("section", id="verdict")
    assert "ok" not in verdict["class"].split()
    assert "NG: 2 passed, 1 failed, 1 skipped in 8.0s" in page
    cells = {(c["data-cluster"], c["data-check"]): c["data-outcome"] for c in elements.having("td", class_="cell")}
    assert cells == {
        ("old", "ingress"): "passed",
        ("new", "ingress"): "failed",
        ("old", "datadog-agent"): "passed",
        ("new", "datadog-agent"): "skipped",
    }
    assert elements.having("td", class_="outcome-failed", data_cluster="new", data_check="ingress")
    assert ">NG <span" in page and ">SKIP <span" in page  # the word in the cell, not colour only
    assert "left behind" in "".join(elements.text)


def test_the_timeline_places_each_step_by_its_start_and_duration() -> None:
    elements = Elements(render_html(sample_report()))

    bars = {(b["data-step"], b["style"]) for b in elements.having("div", class_="bar")}
    # The run spans 8s (the failed check ends at 1 + 6 = 7s; the run took 8s).
    assert ("create Ingress", "left:0.000%;width:18.750%") in bars
    assert ("resolve host", "left:37.500%;width:43.750%") in bars
    assert len(elements.having("div", class_="bar")) == 5
    # The failed check ran 1s..7s; its last step ended at 6.5s: the rest was its cleanup.
    (cleanup,) = elements.having("div", class_="cleanup-bar")
    assert cleanup["style"] == "left:81.250%;width:6.250%"
    assert cleanup["title"] == "cleanup: 1 action, 0.5s after the last step"
    assert [b["data-step"] for b in elements.having("div", class_="bar", style="left:37.500%;width:43.750%")] == [
        "resolve host"
    ]


def test_steps_read_back_from_json_are_laid_end_to_end() -> None:
    """A saved report has no step starts (each reads back as its check's): steps follow one another."""
    report = report_from_dict(report_to_dict(sample_report()))

    elements = Elements(render_html(report))

    styles = [b["style"] for b in elements.having("div", class_="bar") if b["data-step"]]
    assert "left:12.500%;width:25.000%" in styles  # create Ingress on new: 1s..3s of 8s
    assert "left:37.500%;width:43.750%" in styles  # then resolve host: 3s..6.5s


def test_a_failure_has_its_reason_steps_cleanup_facts_and_diagnostics_folded_under_it() -> None:
    page = render_html(sample_report())
    elements = Elements(page)

    failures = elements.having("details", class_="failure")
    assert [(d["data-cluster"], d["data-check"]) for d in failures] == [("new", "ingress")]
    failure = page[page.index(f'id="{failures[0]["id"]}"') :]
    failure = failure[: failure.index("</details>\n</section>")]
    assert "resolves to 10.0.0.9, not 127.0.0.12" in failure
    assert "delete Namespace ingress-test: <strong>timed out</strong>" in failure
    assert "external-dns version" in failure
    assert '<details class="diagnostic">' in failure and "Warning SyncFailed" in failure
    assert "line 1\nline 2" in failure
    # Failures first; the grid cell links to it.
    assert page.index('class="result failure"') < page.index('class="result"')
    assert elements.having("a", href=f"#{failures[0]['id']}")


def test_everything_from_a_cluster_is_escaped() -> None:
    report = sample_report(run_id=HOSTILE, clusters=["old", HOSTILE], checks=["ingress", HOSTILE])
    result = report.results[1]
    result.cluster = HOSTILE
    result.reason = HOSTILE
    result.facts = {HOSTILE: HOSTILE}
    result.steps[0].name = HOSTILE
    result.steps[0].detail = HOSTILE
    result.cleanup[0].description = HOSTILE
    result.diagnostics = [Diagnostic(HOSTILE, HOSTILE, [HOSTILE])]
    report.results[3].check = HOSTILE
    report.plugin_problems = [PluginProblem(HOSTILE, HOSTILE, HOSTILE)]
    report.kubernetes_versions = {HOSTILE: HOSTILE}

    page = render_html(report)
    elements = Elements(page)

    assert "<script>alert" not in page and "<img" not in page
    assert [tag for tag, _ in elements.tags if tag in ("script", "img")] == ["script"]  # only our own script
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;img" in page
    assert HOSTILE in "".join(elements.text)  # shown as text, intact
    assert any(attrs.get("data-cluster") == HOSTILE for _, attrs in elements.tags)


def test_an_empty_report_says_nothing_ran() -> None:
    page = render_html(RunReport(run_id="empty", started_at=START, clusters=[], checks=[]))

    assert "OK: nothing ran in 0.0s" in page
    assert "No checks ran." in page and "Nothing ran." in page
    assert 'class="bar' not in page and 'id="results"' not in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_plugin_problems_interruption_and_missing_shards_are_in_the_verdict() -> None:
    report = sample_report(
        plugin_problems=[PluginProblem("kibertas-async-broken", "ImportError: no module named x")],
        interrupted_by="SIGTERM",
        shard=ShardInfo(count=3, assignment=((), (), ()), merged=(1, 2), missing=(3,)),
    )

    page = render_html(report)

    verdict = page[page.index('id="verdict"') : page.index('id="grid"')]
    assert "interrupted by SIGTERM:" in verdict
    assert "plugin kibertas-async-broken failed to load: ImportError: no module named x" in verdict
    assert "shards: 2 of 3 reported; MISSING: 3/3" in verdict


def test_the_comparison_table_shows_outcomes_versions_timings_and_regressions() -> None:
    report = sample_report()
    report.comparison = compare_run(report, ComparisonSettings("old", "new"))

    page = render_html(report)
    elements = Elements(page)

    section = page[page.index('id="comparison"') : page.index('id="results"')]
    assert "NG: new has 2 regressions against old" in section
    (row,) = elements.having("tr", class_="check", data_check="ingress")
    assert "regression" in row["class"].split()
    assert '<td class="outcome-passed"><strong>OK</strong></td><td class="outcome-failed"' in section
    assert "<td>external-dns version</td><td>v0.20.0</td><td>v0.21.0</td>" in section
    assert '<span class="changed">changed</span>' in section
    assert "<td>create Ingress</td><td>1.50s</td><td>2.00s</td><td>1.33x</td>" in section
    assert '<li class="regression">ingress: NG on new (resolve host: resolves to 10.0.0.9' in section


def test_the_compare_page_stands_alone() -> None:
    report = sample_report()
    comparison = compare_run(report, ComparisonSettings("old", "new"))

    page = render_comparison_html(comparison)

    assert "NG: new has 2 regressions against old" in page
    assert 'class="comparison"' in page and 'class="grid"' not in page
    assert "resolve host: resolves to 10.0.0.9" in page


def test_the_page_loads_nothing_from_anywhere() -> None:
    elements = Elements(render_html(sample_report()))

    (policy,) = elements.having("meta", http_equiv="Content-Security-Policy")
    assert policy["content"].startswith("default-src 'none'")
    assert not [attrs for tag, attrs in elements.tags if tag in ("link", "img", "iframe") or "src" in attrs]
    assert elements.having("meta", name="viewport")


def test_the_reporter_writes_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "report.html"

    HtmlReporter(path).write(sample_report())

    assert path.read_text(encoding="utf-8") == render_html(sample_report())
    assert [item.name for item in tmp_path.iterdir()] == ["report.html"]


def test_run_writes_the_page_and_a_bad_directory_is_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "run.html"

    result = run_cli("run", "sleeper-1", "failing", "--clusters", "alpha,beta", "--report-html", str(path))

    assert result.code == 1, result.err
    elements = Elements(path.read_text(encoding="utf-8"))
    cells = {(c["data-cluster"], c["data-check"]): c["data-outcome"] for c in elements.having("td", class_="cell")}
    assert cells == {
        ("alpha", "sleeper-1"): "passed",
        ("beta", "sleeper-1"): "passed",
        ("alpha", "failing"): "failed",
        ("beta", "failing"): "failed",
    }

    bad = run_cli("run", "sleeper-1", "--report-html", str(tmp_path / "nope" / "r.html"))
    assert bad.code == 2
    assert bad.err.strip().splitlines()[-1].endswith(f"--report-html: directory {tmp_path / 'nope'} does not exist")
    assert not (tmp_path / "nope").exists()


def test_compare_writes_the_page(run_cli: RunCli, tmp_path: Path) -> None:
    report = sample_report()
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(report_to_dict(report)), encoding="utf-8")
    path = tmp_path / "compare.html"

    result = run_cli("compare", f"{saved}:old", f"{saved}:new", "--report-html", str(path))

    assert result.code == 1, result.err
    assert "NG: new has 2 regressions against old" in path.read_text(encoding="utf-8")
    bad = run_cli("compare", f"{saved}:old", f"{saved}:new", "--report-html", str(tmp_path / "nope" / "c.html"))
    assert bad.code == 2 and "--report-html: directory" in bad.err


@pytest.mark.parametrize("outcome", CHECK_OUTCOMES)
def test_every_outcome_has_its_word_and_class(outcome: Outcome) -> None:
    report = RunReport("r", START, ["c"], ["k"], [CheckResult("k", "c", outcome, START, 1.0)], duration=1.0)

    (cell,) = Elements(render_html(report)).having("td", class_="cell")

    assert cell["data-outcome"] == outcome.value and f"outcome-{outcome.value}" in cell["class"].split()


def test_report_merge_writes_the_page_of_the_whole_run(run_cli: RunCli, tmp_path: Path) -> None:
    """Two shards, one never reported: the merged page shows the missing shard and its checks as ERROR."""
    reports = tmp_path / "reports"
    reports.mkdir()
    shard = run_cli("run", "sleeper-1", "failing", "--clusters", "alpha,beta", "--shard", "1/2", "--run-id", "sharded",
                    "--report-dir", str(reports))  # fmt: skip
    assert shard.code in (0, 1), shard.err
    path = tmp_path / "merged.html"

    merged = run_cli(
        "report", "merge", str(reports), "--shards", "2", "--report-html", str(path), "--log-format", "json"
    )

    assert merged.code == 1, merged.err
    page = path.read_text(encoding="utf-8")
    assert "shards: 1 of 2 reported; MISSING: 2/2" in page
    outcomes = {c["data-outcome"] for c in Elements(page).having("td", class_="cell")}
    assert "error" in outcomes and len(Elements(page).having("td", class_="cell")) == 4
    bad = run_cli("report", "merge", str(reports), "--report-html", str(tmp_path / "nope" / "m.html"))
    assert bad.code == 2 and "--report-html: directory" in bad.err


def test_the_timeline_shows_exclusive_checks_one_after_the_other(run_cli: RunCli, tmp_path: Path) -> None:
    """Two checks of one ``exclusive`` group on a cluster never overlap, and a third runs beside them."""
    path = tmp_path / "run.html"

    result = run_cli(
        "run",
        "exclusive-a",
        "exclusive-b",
        "sleeper-1",
        "--clusters",
        "alpha",
        "--synthetic-delay",
        "0.5s",
        "--report-html",
        str(path),
    )

    assert result.code == 0, result.err
    elements = Elements(path.read_text(encoding="utf-8"))

    def band(check: str) -> tuple[float, float]:
        """The check's dashed band, as percentages of the run: (start, end)."""
        index = next(i for i, (tag, a) in enumerate(elements.tags) if a.get("data-check") == check and tag == "div")
        span = next(a for tag, a in elements.tags[index:] if "span" in a.get("class", "").split())
        left, width = (float(part.split(":")[1].rstrip("%")) for part in span["style"].rstrip(";").split(";"))
        return left, left + width

    first, second = sorted([band("exclusive-a"), band("exclusive-b")])
    assert first[1] <= second[0] + 0.5  # one after the other (0.5%: the rounding of the places)
    sleeper = band("sleeper-1")
    assert sleeper[0] < first[1]  # the sleeper started while the first exclusive check was running


def test_a_version_not_found_is_short_in_the_table_and_whole_in_its_tooltip() -> None:
    report = sample_report()
    why = "not found (no Deployment or DaemonSet external-dns in namespace external-dns)"
    report.results[1].facts = {"external-dns version": why}
    report.comparison = compare_run(report, ComparisonSettings("old", "new"))

    page = render_html(report)

    section = page[page.index('id="comparison"') : page.index('id="results"')]
    assert f'<td title="{why}">not found</td>' in section
    assert f">{why}<" not in section and f">{why}<" in page  # the facts keep the whole text
    assert "missing" in {r.kind for r in report.comparison.regressions}


def test_the_readme_shows_the_page_s_screenshot() -> None:
    """docs/img/html-report.png, written by tests/html/test_browser.py (KIBERTAS_ASYNC_UPDATE_SCREENSHOT=1)."""
    root = Path(__file__).parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    outputs = readme[readme.index("### Outputs") : readme.index("### Blue/green comparison")]

    assert "(docs/img/html-report.png)" in outputs and "`--report-html PATH`" in outputs
    assert (root / "docs" / "img" / "html-report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
