"""The scheduling rules shared by the check and the sandbox autoscaler, and the options' parsers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kibertas_async_cluster_autoscaler.checks import PROBE_NAME, NodeGroup, probe_deployment
from kibertas_async_cluster_autoscaler.options import parse_tolerations
from kibertas_async_cluster_autoscaler.scheduling import (
    parse_quantity,
    pod_fits_labels,
    requires_own_node,
    tolerates,
    unschedulable_message,
    why_unschedulable,
)


def _node(*, ready: str = "True", unschedulable: bool = False, taints: list[dict[str, str]] | None = None) -> Any:
    return {
        "metadata": {"name": "n"},
        "spec": {"unschedulable": unschedulable, "taints": taints or []},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def test_ready_untainted_node_is_schedulable() -> None:
    assert why_unschedulable(_node(), []) is None


@pytest.mark.parametrize(
    ("node", "why"),
    [
        (_node(ready="Unknown"), "not Ready"),
        (_node(unschedulable=True), "cordoned"),
        (_node(taints=[{"key": "spot", "value": "true", "effect": "NoSchedule"}]), "tainted spot=true:NoSchedule"),
        (
            _node(taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
            "tainted node.kubernetes.io/unreachable:NoExecute",
        ),
    ],
)
def test_node_not_schedulable_says_why(node: Any, why: str) -> None:
    assert why_unschedulable(node, []) == why


def test_prefer_no_schedule_taint_does_not_exclude_a_node() -> None:
    assert why_unschedulable(_node(taints=[{"key": "x", "effect": "PreferNoSchedule"}]), []) is None


@pytest.mark.parametrize(
    ("toleration", "tolerated"),
    [
        ({"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}, True),
        ({"key": "spot", "operator": "Equal", "value": "false"}, False),
        ({"key": "spot", "operator": "Exists"}, True),
        ({"operator": "Exists"}, True),
        ({"key": "spot", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_tolerations_follow_the_scheduler(toleration: dict[str, str], tolerated: bool) -> None:
    taint = {"key": "spot", "value": "true", "effect": "NoSchedule"}
    assert tolerates([toleration], taint) is tolerated


def test_tolerated_taint_keeps_the_node_schedulable() -> None:
    node = _node(taints=[{"key": "spot", "value": "true", "effect": "NoSchedule"}])
    assert why_unschedulable(node, parse_tolerations("spot=true:NoSchedule")) is None


def test_parse_tolerations_words_and_json() -> None:
    assert parse_tolerations("dedicated=spot:NoSchedule, spot-only") == (
        {"key": "dedicated", "operator": "Equal", "value": "spot", "effect": "NoSchedule"},
        {"key": "spot-only", "operator": "Exists"},
    )
    assert parse_tolerations('[{"operator": "Exists"}]') == ({"operator": "Exists"},)
    assert parse_tolerations("  ") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a:Sometimes", "effect must be"),
        ('[{"operator": "Maybe"}]', "operator must be"),
        ("[1]", "not a JSON list of toleration objects"),
        ("[", "not a JSON list of tolerations"),
    ],
)
def test_parse_tolerations_rejects_nonsense(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_tolerations(text)


def _pod(terms: list[Any] | None = None, node_selector: dict[str, str] | None = None) -> Any:
    spec: dict[str, Any] = {"nodeSelector": node_selector or {}}
    if terms is not None:
        spec["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}
        }
    return {"metadata": {"labels": {}}, "spec": spec}


CAPACITY = "eks.amazonaws.com/capacityType"
SPOT = {CAPACITY: "SPOT", "size": "4"}


@pytest.mark.parametrize(
    ("pod", "fits"),
    [
        (_pod(), True),
        (_pod(node_selector={"eks.amazonaws.com/capacityType": "SPOT"}), True),
        (_pod(node_selector={"eks.amazonaws.com/capacityType": "ON_DEMAND"}), False),
        (_pod([{"matchExpressions": [{"key": CAPACITY, "operator": "In", "values": ["SPOT"]}]}]), True),
        (_pod([{"matchExpressions": [{"key": CAPACITY, "operator": "NotIn", "values": ["SPOT"]}]}]), False),
        (_pod([{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]), True),
        (_pod([{"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}]), False),
        (_pod([{"matchExpressions": [{"key": "size", "operator": "Gt", "values": ["3"]}]}]), True),
        (_pod([{"matchExpressions": [{"key": "size", "operator": "Lt", "values": ["3"]}]}]), False),
        # Terms are ORed: the second one matches.
        (
            _pod(
                [
                    {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
                    {"matchExpressions": [{"key": "size", "operator": "In", "values": ["4"]}]},
                ]
            ),
            True,
        ),
        (_pod([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["x"]}]}]), False),
    ],
)
def test_node_affinity_and_selector(pod: Any, fits: bool) -> None:
    assert pod_fits_labels(pod, SPOT) is fits


@pytest.mark.parametrize(
    ("text", "value"),
    [("100m", Decimal("0.1")), ("2", Decimal(2)), ("16Mi", Decimal(16 * 2**20)), ("1G", Decimal(10**9))],
)
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


def test_parse_quantity_rejects_unknown_suffix() -> None:
    with pytest.raises(ValueError, match="not a resource quantity"):
        parse_quantity("3 apples")


class _DefaultOptions:
    def __getitem__(self, option: Any) -> Any:
        return option.default


class _FakeContext:
    labels = {"app.kubernetes.io/managed-by": "kibertas-async"}
    options = _DefaultOptions()


def test_probe_pods_need_a_node_each_of_the_group() -> None:
    group = NodeGroup("eks.amazonaws.com/capacityType", "SPOT", "node group")
    ctx: Any = _FakeContext()
    template = probe_deployment(ctx, group, 3, ())["spec"]["template"]
    pod = {"metadata": template["metadata"], "spec": template["spec"]}
    assert requires_own_node(pod)
    assert pod_fits_labels(pod, SPOT)
    assert not pod_fits_labels(pod, {"eks.amazonaws.com/capacityType": "ON_DEMAND"})
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == PROBE_NAME


def test_unschedulable_message_only_for_unschedulable_pods() -> None:
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/4 nodes"}
    assert unschedulable_message({"status": {"conditions": [condition]}}) == "0/4 nodes"
    assert unschedulable_message({"status": {"conditions": [{**condition, "status": "True"}]}}) is None
    assert unschedulable_message({"status": {}}) is None
