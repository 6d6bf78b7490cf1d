"""kwok: fake nodes that the real scheduler and controllers treat as kubelets.

kwok marks its nodes Ready (and renews their leases), and moves pods bound to them to Running/Ready with
an IP from ``--cidr``; nothing actually runs. The node shapes mimic a small EKS node group, half on-demand
and half spot, over two zones, so scheduling constraints and autoscaler checks have something real to match.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from kibertas_async.sandbox.addons import AddonContext
from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.processes import ProcessSpec

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
CAPACITY_TYPE_LABEL = "eks.amazonaws.com/capacityType"
_POLL_INTERVAL = 0.2


@dataclass(frozen=True)
class NodeShape:
    """One fake node: its instance type, zone, capacity type and resources."""

    instance_type: str
    zone: str
    capacity_type: str
    cpu: str
    memory: str
    pods: str = "110"


DEFAULT_NODES: tuple[NodeShape, ...] = (
    NodeShape("m5.xlarge", "ap-northeast-1a", "ON_DEMAND", cpu="4", memory="16Gi"),
    NodeShape("m5.xlarge", "ap-northeast-1c", "ON_DEMAND", cpu="4", memory="16Gi"),
    NodeShape("m5.large", "ap-northeast-1a", "SPOT", cpu="2", memory="8Gi"),
    NodeShape("m5.large", "ap-northeast-1c", "SPOT", cpu="2", memory="8Gi"),
)
"""Two on-demand and two spot nodes, one of each per zone."""


class KwokAddon:
    """Runs one kwok controller per cluster and registers :attr:`nodes` as its fake nodes."""

    name = "kwok"

    def __init__(self, nodes: Sequence[NodeShape] = DEFAULT_NODES) -> None:
        self.nodes = tuple(nodes)

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """The kwok controller for this cluster, managing only nodes carrying kwok's annotation."""
        argv = (
            str(context.binaries.kwok),
            f"--kubeconfig={context.kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.0.0.1",
            # kwok v0.7.0 with no lease duration renews no node leases and picks its slow heartbeat
            # stage, so the node lifecycle controller marks nodes (and their pods) NotReady every
            # ~55 s; with leases, nodes stay Ready as a kubelet's would.
            "--node-lease-duration-seconds=40",
            # No --node-port: with it kwok serves a kubelet-like endpoint on 0.0.0.0, not just loopback.
        )
        return [ProcessSpec(f"{context.cluster_name}/kwok", argv, context.work_dir / "kwok.log")]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Create the nodes, then wait until each of them reports Ready."""
        for index, shape in enumerate(self.nodes, start=1):
            try:
                context.api.create("/api/v1/nodes", node_manifest(f"kwok-node-{index}", shape, context))
            except ApiError as error:
                raise SandboxError(f"{context.cluster_name}: could not create a kwok node: {error}") from error
        deadline = time.monotonic() + timeout
        while (not_ready := self._nodes_not_ready(context)) and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL)
        if not_ready:
            raise SandboxError(
                f"{context.cluster_name}: nodes {', '.join(not_ready)} not Ready after {timeout:.0f}s; "
                f"see {context.work_dir / 'kwok.log'}"
            )

    def stop(self, context: AddonContext) -> None:
        """Nothing to release: the nodes live in the cluster's data, which ``down`` removes."""

    def _nodes_not_ready(self, context: AddonContext) -> list[str]:
        expected = {f"kwok-node-{index}" for index in range(1, len(self.nodes) + 1)}
        try:
            items = context.api.get("/api/v1/nodes")["items"]
        except ApiError:
            return sorted(expected)
        for node in items:
            conditions = node.get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                expected.discard(node["metadata"]["name"])
        return sorted(expected)


def node_manifest(name: str, shape: NodeShape, context: AddonContext) -> dict[str, object]:
    """A Node as an EKS managed node group's kubelet would register it, marked for kwok."""
    resources = {"cpu": shape.cpu, "memory": shape.memory, "pods": shape.pods, "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": shape.instance_type,
                "topology.kubernetes.io/region": shape.zone[:-1],
                "topology.kubernetes.io/zone": shape.zone,
                CAPACITY_TYPE_LABEL: shape.capacity_type,
                "type": "kwok",
            },
        },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": f"v{context.kubernetes_version}",
                "kubeProxyVersion": f"v{context.kubernetes_version}",
            },
        },
    }
