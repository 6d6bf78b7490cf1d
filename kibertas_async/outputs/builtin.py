"""The built-in reporters, registered as an ordinary plugin: summary table, JSON, JUnit and HTML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kibertas_async._markers import hookimpl
from kibertas_async.options import Option, OptionValues, optional, parse_bool
from kibertas_async.outputs.html_report import HtmlReporter
from kibertas_async.outputs.json_report import JsonReporter
from kibertas_async.outputs.junit import JunitReporter
from kibertas_async.outputs.protocols import Reporter
from kibertas_async.outputs.summary import SummaryReporter

REPORT_JSON = Option[Path | None](
    "report-json",
    "Write the run report as JSON to this file (schema: docs/report-schema.md).",
    default=None,
    parse=optional(Path),
    per_cluster=False,
    metavar="PATH",
)
JUNIT_XML = Option[Path | None](
    "junit-xml",
    "Write a JUnit XML report to this file: a testsuite per cluster, a testcase per check.",
    default=None,
    parse=optional(Path),
    per_cluster=False,
    metavar="PATH",
)
REPORT_HTML = Option[Path | None](
    "report-html",
    "Write the run report as one self-contained HTML page to this file: verdict, cluster x check grid, "
    "timeline of every step, comparison, failures with their diagnostics.",
    default=None,
    parse=optional(Path),
    per_cluster=False,
    metavar="PATH",
)
SUMMARY = Option[bool](
    "summary",
    "Print the summary table on standard output at the end (default true).",
    default=True,
    parse=parse_bool,
    per_cluster=False,
)


@hookimpl
def kibertas_async_register_options() -> list[Option[Any]]:
    """The report options."""
    return [REPORT_JSON, JUNIT_XML, REPORT_HTML, SUMMARY]


@hookimpl
def kibertas_async_register_reporters(options: OptionValues) -> list[Reporter]:
    """The reporters the user asked for."""
    reporters: list[Reporter] = []
    if options[SUMMARY]:
        reporters.append(SummaryReporter())
    json_path = options[REPORT_JSON]
    if json_path is not None:
        reporters.append(JsonReporter(json_path))
    junit_path = options[JUNIT_XML]
    if junit_path is not None:
        reporters.append(JunitReporter(junit_path))
    html_path = options[REPORT_HTML]
    if html_path is not None:
        reporters.append(HtmlReporter(html_path))
    return reporters
