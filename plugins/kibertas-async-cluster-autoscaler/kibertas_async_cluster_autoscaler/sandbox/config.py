"""What the sandbox autoscaler manages: its node groups, delays, and the switch tests flip.

The add-on writes :class:`AutoscalerConfig` as JSON for the autoscaler process; the ConfigMap
``kube-system/sandbox-autoscaler`` overrides ``enabled`` and the delays while it runs, so a test can
turn the autoscaler off ("autoscaler absent") without touching processes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "sandbox-autoscaler"
GROUP_LABEL = "kibertas-async.sandbox/autoscaler-group"
"""Label on every node the sandbox autoscaler created: the name of its node group."""
CAPACITY_TYPE_LABEL = "eks.amazonaws.com/capacityType"


@dataclass(frozen=True)
class NodeGroupSpec:
    """One node group: the labels and shape of the kwok nodes it adds, and how many at most."""

    name: str
    """Short name, used in node names (``autoscaled-<name>-xxxxx``) and the group label."""
    labels: Mapping[str, str]
    """Labels that make a pod's node affinity pick this group (besides the standard node labels)."""
    instance_type: str
    cpu: str
    memory: str
    zones: tuple[str, ...] = ("ap-northeast-1a", "ap-northeast-1c")
    pods: str = "110"
    max_nodes: int = 4
    """Upper bound on the nodes this group adds (the nodes kwok started with are not counted)."""


DEFAULT_GROUPS: tuple[NodeGroupSpec, ...] = (
    NodeGroupSpec(
        "spot",
        {CAPACITY_TYPE_LABEL: "SPOT", "eks.amazonaws.com/nodegroup": "spot-m5-large"},
        "m5.large",
        cpu="2",
        memory="8Gi",
    ),
    NodeGroupSpec(
        "on-demand",
        {CAPACITY_TYPE_LABEL: "ON_DEMAND", "eks.amazonaws.com/nodegroup": "on-demand-m5-xlarge"},
        "m5.xlarge",
        cpu="4",
        memory="16Gi",
    ),
)
"""The shapes of kwok's own nodes (``kibertas_async.sandbox.addons.kwok``)."""


@dataclass(frozen=True)
class AutoscalerConfig:
    """Everything the autoscaler process is told at start."""

    groups: tuple[NodeGroupSpec, ...] = DEFAULT_GROUPS
    scale_up_delay: float = 2.0
    """Seconds between deciding to add a node and the node appearing (a cloud's boot time, shortened)."""
    scale_down_delay: float = 5.0
    """Seconds a node it added must stay empty before it is removed."""
    enabled: bool = True
    kubernetes_version: str = "0.0.0"
    """Written into the new nodes' ``nodeInfo``, like kwok's own nodes."""

    def to_json(self) -> str:
        """The JSON the add-on writes for the process."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def load(cls, path: Path) -> AutoscalerConfig:
        """Read what :meth:`to_json` wrote."""
        data = json.loads(path.read_text(encoding="utf-8"))
        groups = tuple(NodeGroupSpec(**{**g, "zones": tuple(g["zones"])}) for g in data.pop("groups"))
        return cls(groups=groups, **data)

    def with_overrides(self, data: Mapping[str, str]) -> AutoscalerConfig:
        """Apply the ConfigMap's keys ``enabled``, ``scale-up-delay``, ``scale-down-delay`` (seconds) and
        ``max-nodes`` (every group's bound; absent: each group's own)."""
        updated = self
        if "enabled" in data:
            updated = replace(updated, enabled=data["enabled"].strip().lower() in {"true", "yes", "on", "1"})
        if "scale-up-delay" in data:
            updated = replace(updated, scale_up_delay=float(data["scale-up-delay"]))
        if "scale-down-delay" in data:
            updated = replace(updated, scale_down_delay=float(data["scale-down-delay"]))
        if "max-nodes" in data:
            limit = int(data["max-nodes"])
            updated = replace(updated, groups=tuple(replace(g, max_nodes=limit) for g in updated.groups))
        return updated

    def configmap_data(self) -> dict[str, str]:
        """The ConfigMap's initial contents: the values in force."""
        return {
            "enabled": "true" if self.enabled else "false",
            "scale-up-delay": f"{self.scale_up_delay:g}",
            "scale-down-delay": f"{self.scale_down_delay:g}",
        }
