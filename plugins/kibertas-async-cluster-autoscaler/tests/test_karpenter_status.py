"""How the ``karpenter`` check words Karpenter's status fields (v1 API: NodePool and NodeClaim conditions,
NodePool limits and resources), on objects shaped as real Karpenter v1.13 writes them in the sandbox."""

from __future__ import annotations

from typing import Any

from kibertas_async_cluster_autoscaler.checks import describe_nodeclaim, describe_nodepool
from kibertas_async_cluster_autoscaler.sandbox.karpenter import INSTANCE_TYPES, ZONES, instance_types_document


def _condition(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def _claim(*conditions: dict[str, str], node: str = "", deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "default-7nshs"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-02T01:28:24Z"
    return {"metadata": metadata, "status": {"nodeName": node, "conditions": list(conditions)}}


def test_a_nodeclaim_is_described_by_the_first_stage_it_has_not_reached() -> None:
    assert describe_nodeclaim(_claim()) == "default-7nshs: waiting for Launched"
    launched = _condition("Launched", "True", "Launched")
    registering = _condition("Registered", "Unknown", "NodeNotFound", "Node not registered with cluster")
    assert describe_nodeclaim(_claim(launched, registering)) == (
        "default-7nshs: Launched; waiting for Registered (NodeNotFound: Node not registered with cluster)"
    )
    failed = _condition("Launched", "False", "InsufficientCapacity", "no capacity in ap-northeast-1a")
    assert describe_nodeclaim(_claim(failed)) == (
        "default-7nshs: Launched=False (InsufficientCapacity: no capacity in ap-northeast-1a)"
    )


def test_an_initialized_nodeclaim_names_its_node_and_a_deleted_one_says_so() -> None:
    stages = [_condition(kind, "True", kind) for kind in ("Launched", "Registered", "Initialized")]
    assert describe_nodeclaim(_claim(*stages, node="kwok-default-7nshs-x-1")) == (
        "default-7nshs: Initialized, node kwok-default-7nshs-x-1"
    )
    assert describe_nodeclaim(_claim(*stages, deleting=True)) == "default-7nshs: being deleted"


def test_a_nodepool_shows_its_limits_against_its_resources_and_what_is_not_true() -> None:
    pool: dict[str, Any] = {
        "spec": {"limits": {"cpu": "1"}},
        "status": {
            "resources": {"cpu": "0", "memory": "0", "nodes": "0", "pods": "0"},
            "conditions": [
                _condition("ValidationSucceeded", "True", "ValidationSucceeded"),
                _condition("NodeRegistrationHealthy", "Unknown", "AwaitingReconciliation"),
                _condition("Ready", "True", "Ready"),
            ],
        },
    }
    assert describe_nodepool(pool) == "limits cpu=1; in use cpu=0, nodes=0"
    pool["status"]["conditions"].append(_condition("NodeClassReady", "False", "NodeClassNotReady", "not found"))
    assert describe_nodepool(pool).endswith("; NodeClassReady=False (NodeClassNotReady: not found)")
    assert describe_nodepool({"spec": {}, "status": {"conditions": [_condition("Ready", "True")]}}) == "Ready"


def test_the_instance_types_file_offers_every_type_in_each_zone_as_spot_and_on_demand() -> None:
    document = instance_types_document()
    assert [item["name"] for item in document] == [spec.name for spec in INSTANCE_TYPES]
    for item, spec in zip(document, INSTANCE_TYPES, strict=True):
        assert item["resources"]["cpu"] == spec.cpu
        offered = {
            tuple(requirement["values"][0] for requirement in offering["Requirements"]): offering["Price"]
            for offering in item["offerings"]
        }
        assert offered == {
            **{("spot", zone): spec.spot_price for zone in ZONES},
            **{("on-demand", zone): spec.on_demand_price for zone in ZONES},
        }
