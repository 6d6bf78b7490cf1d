"""``kibertas-async cleanup``: find and delete what killed runs left behind, on every cluster."""

from kibertas_async.cleanup.sweep import (
    DEFAULT_WAIT,
    LabelledObject,
    SweepResult,
    discover_resources,
    find_labelled,
    is_ours,
    label_selector,
    summary_lines,
    sweep_cluster,
    sweep_clusters,
)

__all__ = [
    "DEFAULT_WAIT",
    "LabelledObject",
    "SweepResult",
    "discover_resources",
    "find_labelled",
    "is_ours",
    "label_selector",
    "summary_lines",
    "sweep_cluster",
    "sweep_clusters",
]
