"""The options of the node scale-up checks (the reference tool's environment variable names included)."""

from __future__ import annotations

import json
from typing import Any

from kibertas_async import Option, parse_bool, parse_duration, workload_option

Toleration = dict[str, Any]

_TOLERATION_OPERATORS = ("Equal", "Exists")
_TAINT_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")


def parse_tolerations(text: str) -> tuple[Toleration, ...]:
    """Pod tolerations: a JSON list of toleration objects, or ``key=value:Effect`` / ``key:Effect`` /
    ``key`` (any value) words separated by commas; empty for none.

    ``dedicated=spot:NoSchedule,spot-only`` gives ``{"key": "dedicated", "operator": "Equal", "value":
    "spot", "effect": "NoSchedule"}`` and ``{"key": "spot-only", "operator": "Exists"}``.
    """
    stripped = text.strip()
    if not stripped:
        return ()
    if stripped.startswith("["):
        try:
            loaded = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a JSON list of tolerations: {error.msg}") from None
        if not isinstance(loaded, list) or not all(isinstance(item, dict) for item in loaded):
            raise ValueError("not a JSON list of toleration objects")
        tolerations = tuple(dict(item) for item in loaded)
    else:
        tolerations = tuple(_parse_toleration_word(word.strip()) for word in stripped.split(",") if word.strip())
    for toleration in tolerations:
        if toleration.get("operator", "Equal") not in _TOLERATION_OPERATORS:
            raise ValueError(f"toleration {toleration}: operator must be Equal or Exists")
        if toleration.get("effect", "") not in _TAINT_EFFECTS:
            raise ValueError(f"toleration {toleration}: effect must be NoSchedule, PreferNoSchedule or NoExecute")
    return tolerations


def _parse_toleration_word(word: str) -> Toleration:
    key_value, _, effect = word.partition(":")
    key, equals, value = key_value.partition("=")
    toleration: Toleration = (
        {"key": key, "operator": "Equal", "value": value} if equals else {"key": key, "operator": "Exists"}
    )
    if effect:
        toleration["effect"] = effect
    return toleration


NODE_LABEL_KEY = Option[str](
    "node-label-key",
    "Label key of the node group that must scale up (with node-label-value).",
    default="eks.amazonaws.com/capacityType",
    env=("NODE_LABEL_KEY",),
    metavar="KEY",
)
NODE_LABEL_VALUE = Option[str](
    "node-label-value",
    "Label value of the node group that must scale up.",
    default="SPOT",
    env=("NODE_LABEL_VALUE",),
)
KARPENTER_NODEPOOL = Option[str](
    "karpenter-nodepool",
    "Karpenter NodePool that must provision a node (its nodes carry karpenter.sh/nodepool=<name>).",
    default="default",
    env=("KARPENTER_NODEPOOL",),
    metavar="NAME",
)
KARPENTER_RESPONSE_TIMEOUT = Option[float](
    "karpenter-response-timeout",
    "How long Karpenter may take to answer Unschedulable probe pods (a NodeClaim, or an Event on them) "
    "before the check is NG: Karpenter is not acting.",
    default=120.0,
    parse=parse_duration,
    metavar="DURATION",
)
TOLERATIONS = Option[tuple[Toleration, ...]](
    "scale-up-tolerations",
    "Tolerations of the probe pods, for tainted node groups: key=value:Effect,key:Effect or a JSON list.",
    default=(),
    parse=parse_tolerations,
    metavar="TOLERATIONS",
)
PROBE_IMAGE = Option[str](
    "scale-up-image",
    "Image of the probe pods (they only need to start; requests are tiny).",
    default="registry.k8s.io/pause:3.10",
    metavar="IMAGE",
)
SCALE_UP_TIMEOUT = Option[float](
    "scale-up-timeout",
    "How long the new node(s) may take until every probe replica is Ready.",
    default=600.0,
    parse=parse_duration,
    metavar="DURATION",
)
VERIFY_SCALE_DOWN = Option[bool](
    "verify-scale-down",
    "Also delete the probe and wait until the node(s) that joined are removed again.",
    default=False,
    parse=parse_bool,
)
SCALE_DOWN_TIMEOUT = Option[float](
    "scale-down-timeout",
    "How long the node(s) may take to be removed when verify-scale-down is on.",
    default=900.0,
    parse=parse_duration,
    metavar="DURATION",
)

AUTOSCALER_WORKLOAD = workload_option("cluster-autoscaler", "kube-system/cluster-autoscaler,aws-cluster-autoscaler")
KARPENTER_WORKLOAD = workload_option("karpenter", "kube-system/karpenter")

COMMON_OPTIONS: tuple[Option[Any], ...] = (
    TOLERATIONS,
    PROBE_IMAGE,
    SCALE_UP_TIMEOUT,
    VERIFY_SCALE_DOWN,
    SCALE_DOWN_TIMEOUT,
)
"""Options of both checks."""
