"""``--junit-xml PATH``: a testsuite per cluster, a testcase per check, as CI systems read JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from kibertas_async.compare import Comparison, outcome_mark
from kibertas_async.results import CheckResult, Outcome, RunReport


def report_to_junit(report: RunReport) -> ET.ElementTree[ET.Element]:
    """JUnit XML: FAILED and TIMEOUT are ``<failure>``, ERROR is ``<error>``, SKIPPED ``<skipped>``; a
    comparison (``--compare``) is one more suite, a testcase per check, a regression a ``<failure>``."""
    counts = report.counts()
    comparison = report.comparison
    compared = len(comparison.checks) if comparison is not None else 0
    regressed = sum(bool(check.regressions) for check in comparison.checks) if comparison is not None else 0
    root = ET.Element(
        "testsuites",
        name="kibertas-async",
        tests=str(len(report.results) + compared),
        failures=str(counts[Outcome.FAILED] + counts[Outcome.TIMEOUT] + regressed),
        errors=str(counts[Outcome.ERROR]),
        skipped=str(counts[Outcome.SKIPPED]),
        time=f"{report.duration:.3f}",
        timestamp=report.started_at.isoformat(timespec="seconds"),
    )
    for cluster in report.clusters:
        results = [result for result in report.results if result.cluster == cluster]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=cluster,
            tests=str(len(results)),
            failures=str(sum(r.outcome in (Outcome.FAILED, Outcome.TIMEOUT) for r in results)),
            errors=str(sum(r.outcome is Outcome.ERROR for r in results)),
            skipped=str(sum(r.outcome is Outcome.SKIPPED for r in results)),
            time=f"{sum(r.duration for r in results):.3f}",
            timestamp=report.started_at.isoformat(timespec="seconds"),
        )
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="run_id", value=report.run_id)
        if cluster in report.kubernetes_versions:
            ET.SubElement(properties, "property", name="kubernetes_version", value=report.kubernetes_versions[cluster])
        for result in results:
            _testcase(suite, result)
    if comparison is not None:
        _comparison_suite(root, comparison, report)
    ET.indent(root)
    return ET.ElementTree(root)


def _testcase(suite: ET.Element, result: CheckResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"kibertas-async.{result.cluster}",
        name=result.check,
        time=f"{result.duration:.3f}",
    )
    message = f"{result.step}: {result.reason}" if result.step else result.reason
    detail = "\n".join(
        [
            f"step {step.name}: {step.outcome.value} in {step.duration:.1f}s {step.detail}".rstrip()
            for step in result.steps
        ]
        + [f"cleanup {item.description}: {item.status} {item.detail}".rstrip() for item in result.cleanup]
    )
    if result.outcome in (Outcome.FAILED, Outcome.TIMEOUT):
        element = ET.SubElement(case, "failure", message=message, type=result.outcome.value)
        element.text = detail
    elif result.outcome is Outcome.ERROR:
        element = ET.SubElement(case, "error", message=message, type="error")
        element.text = detail
    elif result.outcome is Outcome.SKIPPED:
        ET.SubElement(case, "skipped", message=result.reason)
    if result.facts:
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(f"{key}: {value}" for key, value in result.facts.items())


def _comparison_suite(root: ET.Element, comparison: Comparison, report: RunReport) -> None:
    settings = comparison.settings
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"compare {settings.old} -> {settings.new}",
        tests=str(len(comparison.checks)),
        failures=str(sum(bool(check.regressions) for check in comparison.checks)),
        errors="0",
        skipped="0",
        time="0.000",
        timestamp=report.started_at.isoformat(timespec="seconds"),
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="run_id", value=report.run_id)
    ET.SubElement(properties, "property", name="verdict", value=comparison.verdict())
    for check in comparison.checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"kibertas-async.compare.{settings.old}-{settings.new}", name=check.check
        )
        if check.regressions:
            element = ET.SubElement(
                case, "failure", message="; ".join(item.message for item in check.regressions), type="regression"
            )
            element.text = "\n".join(item.message for item in check.regressions)
        lines = [f"outcome: {outcome_mark(check.old)} -> {outcome_mark(check.new)}"]
        lines += [f"{pair.name} version: {pair.old or '-'} -> {pair.new or '-'}" for pair in check.versions]
        lines += [
            f"step {timing.name}: {timing.old:.1f}s -> {timing.new:.1f}s"
            + (f" ({timing.ratio:.2f}x)" if timing.ratio is not None else "")
            for timing in check.timings
        ]
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(lines)


class JunitReporter:
    """Writes :func:`report_to_junit` to a file."""

    name = "junit"

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, report: RunReport) -> None:
        """Write the XML file atomically."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        report_to_junit(report).write(temporary, encoding="utf-8", xml_declaration=True)
        temporary.replace(self.path)
