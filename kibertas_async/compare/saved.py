"""Sides read back from saved JSON run reports (``--report-json``), for ``kibertas-async compare``.

Anything that keeps a file from being compared (unreadable, not JSON, not a run report, a schema
version this tool does not know, a cluster the report does not hold) is a :class:`UsageError`: one
line, exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kibertas_async.errors import UsageError
from kibertas_async.results import Outcome, Side, SideResult

SCHEMA = "kibertas-async/run-report"
READABLE_VERSIONS = (1, 2)
"""Schema versions a comparison reads (version 1 reports carry no Kubernetes versions)."""


def load_report(path: Path) -> dict[str, Any]:
    """The report at ``path``, checked to be a run report of a schema version we read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read report {path}: {error.strerror or error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"report {path} is not JSON: {error.msg} at line {error.lineno}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise UsageError(f'{path} is not a kibertas-async run report (no "schema": "{SCHEMA}")')
    version = document.get("schema_version")
    if version not in READABLE_VERSIONS:
        readable = ", ".join(str(item) for item in READABLE_VERSIONS)
        raise UsageError(f"report {path} has schema version {version!r}; this kibertas-async reads {readable}")
    return document


def side_from_report(document: Mapping[str, Any], cluster: str | None, *, source: str) -> Side:
    """One cluster of a loaded report; ``cluster`` may be left out when the report holds only one."""
    clusters = [str(name) for name in document.get("clusters") or []]
    if cluster is None:
        if len(clusters) != 1:
            listed = ", ".join(clusters) or "none"
            raise UsageError(f"{source} holds {len(clusters)} clusters ({listed}); name one (FILE:CLUSTER)")
        cluster = clusters[0]
    elif cluster not in clusters:
        raise UsageError(f"{source} has no cluster {cluster!r} (it holds: {', '.join(clusters) or 'none'})")
    try:
        results = {
            str(item["check"]): _side_result(item)
            for item in document.get("results") or []
            if item.get("cluster") == cluster
        }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UsageError(f"{source}: a result is malformed ({type(error).__name__}: {error})") from None
    versions = document.get("kubernetes_versions") or {}
    version = versions.get(cluster) if isinstance(versions, dict) else None
    return Side(cluster, results, str(version) if version is not None else None, source=f"{source}:{cluster}")


def load_side(spec: str) -> Side:
    """``FILE`` or ``FILE:CLUSTER``, as the ``compare`` command takes them."""
    path, cluster = Path(spec), None
    if not path.exists() and ":" in spec:
        head, _, tail = spec.rpartition(":")
        path, cluster = Path(head), tail
    return side_from_report(load_report(path), cluster, source=str(path))


def _side_result(item: Mapping[str, Any]) -> SideResult:
    return SideResult(
        outcome=Outcome(item["outcome"]),
        step=item.get("step"),
        reason=str(item.get("reason") or ""),
        steps=tuple(
            (str(step["name"]), Outcome(step["outcome"]), float(step["duration_seconds"]))
            for step in item.get("steps") or []
        ),
        facts={str(key): str(value) for key, value in (item.get("facts") or {}).items()},
    )
