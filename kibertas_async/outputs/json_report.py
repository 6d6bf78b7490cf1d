"""``--report-json PATH``: the run as one JSON document (schema in docs/report-schema.md), and back.

:func:`report_from_dict` reads a document :func:`report_to_dict` wrote: ``report merge`` combines the
shards' reports of a sharded run with it (docs/sharding.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from kibertas_async.compare import comparison_to_dict
from kibertas_async.results import (
    CheckResult,
    CleanupResult,
    Diagnostic,
    Outcome,
    PluginProblem,
    RunReport,
    ShardInfo,
    StepResult,
)

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
        "shard": None if report.shard is None else _shard_to_dict(report.shard),
        "results": [_result_to_dict(result) for result in report.results],
        "kubernetes_versions": dict(report.kubernetes_versions),
        "comparison": None if report.comparison is None else comparison_to_dict(report.comparison),
    }


def _shard_to_dict(shard: ShardInfo) -> dict[str, Any]:
    data: dict[str, Any] = {"index": shard.index, "count": shard.count}
    if shard.index is None:
        data["merged"] = list(shard.merged)
        data["missing"] = list(shard.missing)
    data["assignment"] = [
        [{"cluster": cluster, "check": check} for cluster, check in cells] for cells in shard.assignment
    ]
    return data


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
        "diagnostics": [
            {"source": item.source, "title": item.title, "lines": list(item.lines)} for item in result.diagnostics
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


def report_from_dict(data: Mapping[str, Any]) -> RunReport:
    """The :class:`RunReport` a :func:`report_to_dict` document describes.

    :raises ValueError: not a run report of a schema version this code reads, or a field is malformed.
    """
    if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} document")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"schema_version {data.get('schema_version')!r}; this kibertas-async reads {SCHEMA_VERSION}")
    try:
        shard = data.get("shard")
        return RunReport(
            run_id=str(data["run_id"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            clusters=[str(name) for name in data["clusters"]],
            checks=[str(name) for name in data["checks"]],
            results=[_result_from_dict(item) for item in data["results"]],
            duration=float(data["duration_seconds"]),
            interrupted_by=data.get("interrupted_by"),
            plugin_problems=[
                PluginProblem(str(item["plugin"]), str(item["error"]), str(item.get("hook", "")))
                for item in data["plugin_problems"]
            ],
            shard=None if shard is None else _shard_from_dict(shard),
            kubernetes_versions={str(k): str(v) for k, v in (data.get("kubernetes_versions") or {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"malformed report: {type(error).__name__}: {error}") from None


def _shard_from_dict(data: Mapping[str, Any]) -> ShardInfo:
    index = data["index"]
    return ShardInfo(
        count=int(data["count"]),
        assignment=tuple(
            tuple((str(cell["cluster"]), str(cell["check"])) for cell in cells) for cells in data["assignment"]
        ),
        index=None if index is None else int(index),
        merged=tuple(int(i) for i in data.get("merged", ())),
        missing=tuple(int(i) for i in data.get("missing", ())),
    )


def _result_from_dict(data: Mapping[str, Any]) -> CheckResult:
    return CheckResult(
        check=str(data["check"]),
        cluster=str(data["cluster"]),
        outcome=Outcome(data["outcome"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        duration=float(data["duration_seconds"]),
        step=data.get("step"),
        reason=str(data.get("reason", "")),
        steps=[
            StepResult(
                name=str(step["name"]),
                # A step's own start is not in the document; the check's stands in for it.
                started_at=datetime.fromisoformat(data["started_at"]),
                duration=float(step["duration_seconds"]),
                outcome=Outcome(step["outcome"]),
                detail=str(step.get("detail", "")),
            )
            for step in data.get("steps", [])
        ],
        cleanup=[
            CleanupResult(str(item["description"]), str(item["status"]), str(item.get("detail", "")))
            for item in data.get("cleanup", [])
        ],
        facts={str(key): str(value) for key, value in data.get("facts", {}).items()},
        api_requests=int(data.get("api_requests", 0)),
        diagnostics=[
            Diagnostic(str(item["source"]), str(item["title"]), [str(line) for line in item.get("lines", [])])
            for item in data.get("diagnostics", [])
        ],
    )
