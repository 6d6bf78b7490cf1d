"""The scheduling rules the check and the sandbox autoscaler both need, as pure functions over plain dicts.

They follow the kube-scheduler's semantics for what they cover: taints and tolerations, required node
affinity (``nodeSelectorTerms``), ``nodeSelector``, node readiness and resource quantities.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

KubeObject = dict[str, Any]

BLOCKING_TAINT_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
"""Taint effects that keep a pod off a node unless it tolerates them (``PreferNoSchedule`` does not)."""


def is_ready(node: Mapping[str, Any]) -> bool:
    """Whether the node's ``Ready`` condition is ``True``."""
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def tolerates(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether one of ``tolerations`` tolerates ``taint`` (the scheduler's ``ToleratesTaint``)."""
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key") or ""
        operator = toleration.get("operator") or "Equal"
        if operator == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def untolerated_taints(node: Mapping[str, Any], tolerations: Sequence[Mapping[str, Any]]) -> list[str]:
    """The node's ``NoSchedule``/``NoExecute`` taints that ``tolerations`` do not tolerate, as text."""
    taints = node.get("spec", {}).get("taints") or []
    return [
        f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
        for t in taints
        if t.get("effect") in BLOCKING_TAINT_EFFECTS and not tolerates(tolerations, t)
    ]


def why_unschedulable(node: Mapping[str, Any], tolerations: Sequence[Mapping[str, Any]]) -> str | None:
    """Why new pods with ``tolerations`` cannot land on ``node`` (``None``: they can)."""
    if not is_ready(node):
        return "not Ready"
    if node.get("spec", {}).get("unschedulable"):
        return "cordoned"
    taints = untolerated_taints(node, tolerations)
    if taints:
        return f"tainted {', '.join(taints)}"
    return None


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = expression.get("key", "")
    operator = expression.get("operator", "")
    values = [str(v) for v in expression.get("values") or []]
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if operator == "Gt" else have < want
    return False


def node_selector_terms_match(terms: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> bool:
    """Required node affinity: the terms are ORed, the expressions of one term ANDed.

    ``matchFields`` (on ``metadata.name``) is not supported: a term using it never matches a node that
    does not exist yet, which is what the autoscaler asks.
    """
    for term in terms:
        if term.get("matchFields"):
            continue
        expressions = term.get("matchExpressions") or []
        if expressions and all(_expression_matches(e, labels) for e in expressions):
            return True
    return False


def pod_fits_labels(pod: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a node with ``labels`` satisfies the pod's ``nodeSelector`` and required node affinity."""
    spec = pod.get("spec", {})
    selector: Mapping[str, str] = spec.get("nodeSelector") or {}
    if any(labels.get(key) != value for key, value in selector.items()):
        return False
    required = (
        (spec.get("affinity") or {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms")
    )
    return not required or node_selector_terms_match(required, labels)


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
}


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes resource quantity (``100m``, ``2``, ``16Mi``, ``1G``) as a number of base units."""
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ValueError(f"{text!r} is not a resource quantity")
    return Decimal(match.group(1)) * _SUFFIX[match.group(2)]


def pod_requests(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    """The sum of the pod's container requests (init containers ignored: ours have none)."""
    total: dict[str, Decimal] = {}
    for container in pod.get("spec", {}).get("containers") or []:
        for resource, amount in ((container.get("resources") or {}).get("requests") or {}).items():
            total[resource] = total.get(resource, Decimal(0)) + parse_quantity(amount)
    return total


def requires_own_node(pod: Mapping[str, Any]) -> bool:
    """Whether the pod's required anti-affinity on ``kubernetes.io/hostname`` selects its own labels.

    Such pods need one node each, which is how the check forces a scale-up.
    """
    labels: Mapping[str, str] = pod.get("metadata", {}).get("labels") or {}
    terms = (pod.get("spec", {}).get("affinity") or {}).get("podAntiAffinity", {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or []
    for term in terms:
        if term.get("topologyKey") != "kubernetes.io/hostname":
            continue
        match_labels: Mapping[str, str] = (term.get("labelSelector") or {}).get("matchLabels") or {}
        if match_labels and all(labels.get(k) == v for k, v in match_labels.items()):
            return True
    return False


def unschedulable_message(pod: Mapping[str, Any]) -> str | None:
    """The scheduler's message when the pod's ``PodScheduled`` condition is False/Unschedulable."""
    for condition in pod.get("status", {}).get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return str(condition.get("message") or "Unschedulable")
    return None
