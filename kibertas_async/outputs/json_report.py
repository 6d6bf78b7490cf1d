"""``--report-json PATH``: the run as one JSON document (schema in docs/report-schema.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kibertas_async.compare import comparison_to_dict
from kibertas_async.engine.results import CheckResult, RunReport

SCHEMA = "kibertas-async/run-report"
SCHEMA_VERSION = 2
"""2: ``kubernetes_versions`` and ``comparison`` (and ``ok`` is false on a comparison regression)."""


def report_to_dict(report: RunReport) -> dict[str, Any]:
    """The versioned JSON form of a run report."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run_id": report.run_id,
        "started_at": report.started_at.isoformat(),
        "duration_seconds": round(report.duration, 3),
        "ok": report.ok,
        "interrupted_by": report.interrupted_by,
        "clusters": list(report.clusters),
        "checks": list(report.checks),
        "counts": {outcome.value: count for outcome, count in report.counts().items()},
        "plugin_problems": [{"plugin": p.plugin, "hook": p.hook, "error": p.error} for p in report.plugin_problems],
        "results": [_result_to_dict(result) for result in report.results],
        "kubernetes_versions": dict(report.kubernetes_versions),
        "comparison": None if report.comparison is None else comparison_to_dict(report.comparison),
    }


def _result_to_dict(result: CheckResult) -> dict[str, Any]:
    return {
        "cluster": result.cluster,
        "check": result.check,
        "outcome": result.outcome.value,
        "step": result.step,
        "reason": result.reason,
        "started_at": result.started_at.isoformat(),
        "duration_seconds": round(result.duration, 3),
        "facts": dict(result.facts),
        "api_requests": result.api_requests,
        "steps": [
            {
                "name": step.name,
                "outcome": step.outcome.value,
                "duration_seconds": round(step.duration, 3),
                "detail": step.detail,
            }
            for step in result.steps
        ],
        "cleanup": [
            {"description": item.description, "status": item.status, "detail": item.detail} for item in result.cleanup
        ],
    }


class JsonReporter:
    """Writes :func:`report_to_dict` to a file."""

    name = "json"

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, report: RunReport) -> None:
        """Write the file (atomically: a reader never sees half a report)."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(report_to_dict(report), indent=2) + "\n", encoding="utf-8")
        temporary.replace(self.path)
