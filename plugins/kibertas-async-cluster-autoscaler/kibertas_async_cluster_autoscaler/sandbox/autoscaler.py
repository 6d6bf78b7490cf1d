"""The sandbox autoscaler: cluster-autoscaler's job, done on kwok nodes (run as a sandbox process).

The real cluster-autoscaler has a kwok cloud provider, but its module is not served by the Go module
proxy this project builds from (see the plugin's README), so this stands in for it. It works like the
real one, only simpler:

- it follows pods, nodes and its ConfigMap with list-then-watch;
- a pod that the scheduler marked unschedulable (``PodScheduled=False``, reason ``Unschedulable``) and
  whose ``nodeSelector``, required node affinity and resource requests a node group's shape satisfies
  makes that group grow, after ``scale-up-delay``, by one kwok node per such pod that needs a node of its
  own (required anti-affinity on ``kubernetes.io/hostname``), else by one node, never beyond
  ``max_nodes``; the first matching group wins;
- it records on each pod the Events cluster-autoscaler records: ``TriggeredScaleUp`` and
  ``NotTriggerScaleUp`` (no group fits, or ``1 max node group size reached``), as ``cluster-autoscaler``;
- a node it added that carries no pods (DaemonSet pods aside) for ``scale-down-delay`` is removed.

Karpenter is not played here: the sandbox runs the real one (:mod:`.karpenter`).

Run: ``python -m kibertas_async_cluster_autoscaler.sandbox.autoscaler --kubeconfig K --config C.json
--ready-file F``; it writes ``F`` once its first lists are done.
"""

from __future__ import annotations

import argparse
import logging
import math
import secrets
import string
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio

from kibertas_async import (
    CONFIGMAPS,
    EVENTS,
    NODES,
    PODS,
    Change,
    ClusterTarget,
    Informer,
    KubeApiError,
    KubeClient,
    KubeObject,
    KubeUnavailable,
    connect,
)
from kibertas_async_cluster_autoscaler.sandbox.config import (
    CONFIGMAP_NAME,
    CONFIGMAP_NAMESPACE,
    GROUP_LABEL,
    AutoscalerConfig,
    NodeGroupSpec,
)
from kibertas_async_cluster_autoscaler.scheduling import (
    parse_quantity,
    pod_fits_labels,
    pod_requests,
    requires_own_node,
    unschedulable_message,
)

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
PROVISION_GRACE = 30.0
"""Seconds a pod's new node is given (from its creation) to take the pod before the pod may ask again."""
_IDLE_WAKEUP = 5.0
CLUSTER_AUTOSCALER = "cluster-autoscaler"
"""The event source the stand-in records as: that of the component it stands in for."""

log = logging.getLogger("sandbox-autoscaler")


@dataclass
class PlannedNode:
    """A node decided on, not created yet (its group's scale-up delay is running)."""

    name: str
    group: NodeGroupSpec
    due: float


@dataclass
class Autoscaler:
    """The decisions, over informers on the cluster's pods, nodes and the settings ConfigMap."""

    kube: KubeClient
    config: AutoscalerConfig
    pods: Informer
    nodes: Informer
    settings: Informer
    planned: list[PlannedNode] = field(default_factory=list)
    provisioned_for: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Pod uid → (node planned for it, when)."""
    empty_since: dict[str, float] = field(default_factory=dict)
    _events_sent: set[tuple[str, str, str]] = field(default_factory=set)
    _reported: set[str] = field(default_factory=set)

    @property
    def current(self) -> AutoscalerConfig:
        """The start configuration with the ConfigMap's overrides applied."""
        configmap = self.settings.objects.get(f"{CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}")
        try:
            return self.config.with_overrides((configmap or {}).get("data") or {})
        except ValueError as error:
            self._once(f"bad ConfigMap {CONFIGMAP_NAME}: {error}; using the start configuration")
            return self.config

    async def reconcile(self) -> float:
        """One pass: create due nodes, plan new ones, remove idle ones. Returns when to look again."""
        settings = self.current
        if not settings.enabled:
            self._once("disabled by ConfigMap: not scaling")
            return math.inf
        self._reported.discard("disabled by ConfigMap: not scaling")
        now = anyio.current_time()
        for planned in [p for p in self.planned if p.due <= now]:
            self.planned.remove(planned)
            await self._create_node(planned, settings)
        await self._scale_up(settings, now)
        await self._scale_down(settings, now)
        wakeups = [p.due for p in self.planned] + [t + settings.scale_down_delay for t in self.empty_since.values()]
        return min(wakeups, default=now + _IDLE_WAKEUP)

    # --- scale-up ------------------------------------------------------------------------------

    async def _scale_up(self, settings: AutoscalerConfig, now: float) -> None:
        wanted: dict[str, list[KubeObject]] = {}
        groups = {group.name: group for group in settings.groups}
        present = {pod["metadata"]["uid"] for pod in self.pods.objects.values()}
        self.provisioned_for = {uid: entry for uid, entry in self.provisioned_for.items() if uid in present}
        self._events_sent = {key for key in self._events_sent if key[0] in present}
        # A snapshot: the loop awaits (Events) while the pods informer keeps applying
        # changes to its dict; iterating the live dict raised "dictionary changed size during iteration"
        # and ended this process, so no scale-up came for the rest of the session.
        for pod in list(self.pods.objects.values()):
            if pod.get("spec", {}).get("nodeName") or pod["metadata"].get("deletionTimestamp"):
                continue
            if unschedulable_message(pod) is None or self._being_provisioned(pod, now):
                continue
            group = _matching_group(pod, settings.groups)
            if group is None:
                message = f"{len(settings.groups)} node group(s) didn't match its node affinity/selector or requests"
                await self._pod_event(
                    pod, CLUSTER_AUTOSCALER, "NotTriggerScaleUp", f"pod didn't trigger scale-up: {message}"
                )
                continue
            wanted.setdefault(group.name, []).append(pod)
        for group_name, pods in wanted.items():
            group = groups[group_name]
            own_node = [pod for pod in pods if requires_own_node(pod)]
            count = len(own_node) + (1 if len(own_node) < len(pods) else 0)
            size = self._group_size(group)
            for index in range(min(count, max(0, group.max_nodes - size))):
                planned = PlannedNode(_node_name(group), group, now + settings.scale_up_delay)
                self.planned.append(planned)
                takers = own_node[index : index + 1] if index < len(own_node) else pods
                for pod in takers:
                    self.provisioned_for[pod["metadata"]["uid"]] = (planned.name, now)
                    await self._announce_scale_up(pod, planned, size + index)
                log.info("scale-up: group %s gets node %s in %gs", group.name, planned.name, settings.scale_up_delay)
            for pod in pods:
                if pod["metadata"]["uid"] not in self.provisioned_for:
                    await self._announce_at_maximum(pod, group)

    async def _announce_scale_up(self, pod: KubeObject, planned: PlannedNode, size: int) -> None:
        """The event cluster-autoscaler records on a pod it adds a node for."""
        group = planned.group
        change = f"{group.name} {size}->{size + 1} (max: {group.max_nodes})"
        await self._pod_event(pod, CLUSTER_AUTOSCALER, "TriggeredScaleUp", f"pod triggered scale-up: [{{{change}}}]")

    async def _announce_at_maximum(self, pod: KubeObject, group: NodeGroupSpec) -> None:
        """What cluster-autoscaler records on a pod when the group may not grow."""
        message = "pod didn't trigger scale-up: 1 max node group size reached"
        await self._pod_event(pod, CLUSTER_AUTOSCALER, "NotTriggerScaleUp", message)

    async def _pod_event(
        self, pod: KubeObject, component: str, reason: str, message: str, event_type: str = "Normal"
    ) -> None:
        """Record an Event on ``pod`` (once per pod, reason and message), as ``component``."""
        metadata = pod["metadata"]
        key = (metadata["uid"], reason, message)
        if key in self._events_sent:
            return
        self._events_sent.add(key)
        now = _now_rfc3339()
        event = {
            "metadata": {"name": f"{metadata['name']}.{secrets.token_hex(8)}", "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.kube.create(EVENTS, event, metadata["namespace"])
        except KubeApiError as error:  # the pod's namespace may be going away: nothing to tell then
            log.info("event %s on %s not recorded: %s", reason, metadata["name"], error)

    def _being_provisioned(self, pod: KubeObject, now: float) -> bool:
        entry = self.provisioned_for.get(pod["metadata"]["uid"])
        if entry is None:
            return False
        node, since = entry
        if any(p.name == node for p in self.planned):
            return True
        # Not "node in self.nodes.objects": right after we create a node, our own watch has not shown
        # it yet, and the pod would get a second node.
        return now - since < PROVISION_GRACE

    def _group_size(self, group: NodeGroupSpec) -> int:
        existing = sum(1 for n in self.nodes.objects.values() if n["metadata"]["labels"].get(GROUP_LABEL) == group.name)
        return existing + sum(1 for p in self.planned if p.group.name == group.name)

    async def _create_node(self, planned: PlannedNode, settings: AutoscalerConfig) -> None:
        group = planned.group
        zones = Counter(
            n["metadata"]["labels"].get("topology.kubernetes.io/zone")
            for n in self.nodes.objects.values()
            if n["metadata"]["labels"].get(GROUP_LABEL) == group.name
        )
        zone = min(group.zones, key=lambda z: zones.get(z, 0))
        manifest = node_manifest(planned.name, group, zone, settings.kubernetes_version)
        try:
            await self.kube.create(NODES, manifest)
        except KubeApiError as error:
            log.error("could not create node %s: %s", planned.name, error)
            return
        log.info("node %s of group %s created in %s", planned.name, group.name, zone)
        created = anyio.current_time()
        for uid, (node, _planned_at) in list(self.provisioned_for.items()):
            if node == planned.name:
                # The grace period of the pods it was planned for starts now that it exists.
                self.provisioned_for[uid] = (node, created)

    # --- scale-down ----------------------------------------------------------------------------

    async def _scale_down(self, settings: AutoscalerConfig, now: float) -> None:
        busy = Counter(
            pod["spec"]["nodeName"]
            for pod in self.pods.objects.values()
            if pod.get("spec", {}).get("nodeName")
            and pod.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and not any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences") or [])
        )
        ours = {name: n for name, n in self.nodes.objects.items() if GROUP_LABEL in n["metadata"].get("labels", {})}
        for name in list(self.empty_since):
            if name not in ours or busy.get(name):
                del self.empty_since[name]
        for name, node in ours.items():
            if busy.get(name) or node["metadata"].get("deletionTimestamp"):
                continue
            since = self.empty_since.setdefault(name, now)
            if now - since >= settings.scale_down_delay:
                await self._remove_node(node)
                del self.empty_since[name]

    async def _remove_node(self, node: KubeObject) -> None:
        name = node["metadata"]["name"]
        await self.kube.delete(NODES, name)
        log.info("scale-down: node %s was empty for the scale-down delay and is deleted", name)

    def _once(self, message: str) -> None:
        """Log a recurring situation once, not on every pass."""
        if message not in self._reported:
            self._reported.add(message)
            log.info("%s", message)


def _matching_group(pod: KubeObject, groups: tuple[NodeGroupSpec, ...]) -> NodeGroupSpec | None:
    """The first group whose nodes would satisfy the pod's node selection and requests."""
    for group in groups:
        if pod_fits_labels(pod, _node_labels(group, "template", group.zones[0])) and _fits_shape(pod, group):
            return group
    return None


def _fits_shape(pod: KubeObject, group: NodeGroupSpec) -> bool:
    allocatable = {"cpu": parse_quantity(group.cpu), "memory": parse_quantity(group.memory)}
    requests = pod_requests(pod)
    return all(requests.get(resource, Decimal(0)) <= amount for resource, amount in allocatable.items())


def _node_labels(group: NodeGroupSpec, name: str, zone: str) -> dict[str, str]:
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": group.instance_type,
        "topology.kubernetes.io/region": zone[:-1],
        "topology.kubernetes.io/zone": zone,
        "type": "kwok",
        **group.labels,
        GROUP_LABEL: group.name,
    }


def node_manifest(name: str, group: NodeGroupSpec, zone: str, kubernetes_version: str) -> KubeObject:
    """A kwok node of ``group``, as the kwok add-on makes them."""
    resources = {"cpu": group.cpu, "memory": group.memory, "pods": group.pods, "ephemeral-storage": "100Gi"}
    metadata: dict[str, Any] = {
        "name": name,
        "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        "labels": _node_labels(group, name, zone),
    }
    return {
        "metadata": metadata,
        "spec": {"providerID": f"kwok://{name}"},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": f"v{kubernetes_version}",
                "kubeProxyVersion": f"v{kubernetes_version}",
            },
        },
    }


def _node_name(group: NodeGroupSpec) -> str:
    return f"autoscaled-{group.name}-{_suffix()}"


def _suffix() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))


def _now_rfc3339() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def run(kubeconfig: Path, config: AutoscalerConfig, ready_file: Path) -> None:
    """Follow the cluster and reconcile whenever something changes or a delay runs out."""
    kube = await connect(ClusterTarget("sandbox", kubeconfig=str(kubeconfig)))
    changed = anyio.Event()

    def wake(_changes: Sequence[Change]) -> None:
        changed.set()

    informers = (
        Informer(kube, PODS),
        Informer(kube, NODES),
        Informer(kube, CONFIGMAPS, CONFIGMAP_NAMESPACE, field_selector=f"metadata.name={CONFIGMAP_NAME}"),
    )
    autoscaler = Autoscaler(kube, config, *informers)
    async with kube, anyio.create_task_group() as group:
        for informer in informers:
            informer.on_change(wake)
            await group.start(informer.run)
        await anyio.Path(ready_file).write_text("ready\n", encoding="utf-8")
        log.info("following pods and nodes; groups: %s", ", ".join(g.name for g in config.groups))
        while True:
            changed = anyio.Event()
            try:
                next_look = await autoscaler.reconcile()
            except (KubeApiError, KubeUnavailable) as error:
                log.error("reconcile failed, retrying: %s", error)
                next_look = anyio.current_time() + 1.0
            with anyio.move_on_after(max(0.0, next_look - anyio.current_time())):
                await changed.wait()


def main(argv: list[str] | None = None) -> int:
    """Command line of the sandbox process."""
    parser = argparse.ArgumentParser(prog="sandbox-autoscaler", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s")
    anyio.run(run, args.kubeconfig, AutoscalerConfig.load(args.config), args.ready_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
