"""The node scale-up checks: one more pod than the node group has schedulable nodes, one pod per node.

Both checks count the Ready, schedulable nodes of a group (N), create a Deployment of N+1 replicas that
must each land on their own node of that group (required node affinity to the group's label, required
pod anti-affinity on ``kubernetes.io/hostname``), and pass when every replica is Ready on a node that
joined after the count. ``cluster-autoscaler`` selects the group by any node label; ``karpenter`` by a
NodePool (``karpenter.sh/nodepool``) and also reports the NodeClaim Karpenter created. They are two
checks rather than one check with a mode so each has its own name in reports and its own SKIPPED
answer: ``run --all`` on a cluster without Karpenter skips ``karpenter`` instead of failing it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from kibertas_async import (
    DEPLOYMENTS,
    EVENTS,
    NODES,
    PODS,
    WORKLOAD_READ,
    Check,
    CheckContext,
    KubeApiError,
    KubeObject,
    Permission,
    Resource,
    report_addon_version,
)
from kibertas_async_cluster_autoscaler.mirror import Mirror
from kibertas_async_cluster_autoscaler.options import (
    AUTOSCALER_WORKLOAD,
    COMMON_OPTIONS,
    KARPENTER_NODEPOOL,
    KARPENTER_WORKLOAD,
    NODE_LABEL_KEY,
    NODE_LABEL_VALUE,
    PROBE_IMAGE,
    SCALE_DOWN_TIMEOUT,
    SCALE_UP_TIMEOUT,
    TOLERATIONS,
    VERIFY_SCALE_DOWN,
    Toleration,
)
from kibertas_async_cluster_autoscaler.scheduling import unschedulable_message, why_unschedulable

AUTOSCALER_COMPONENTS = frozenset({"cluster-autoscaler", "karpenter"})
"""Event sources whose word on a pending probe pod is worth reporting (why a scale-up did not happen)."""
PROBE_NAME = "scale-up-probe"
"""Name of the Deployment (and the ``app.kubernetes.io/name`` of its pods)."""
NODEPOOL_LABEL = "karpenter.sh/nodepool"
NODEPOOLS = Resource("karpenter.sh", "v1", "nodepools", "NodePool", namespaced=False)
NODECLAIMS = Resource("karpenter.sh", "v1", "nodeclaims", "NodeClaim", namespaced=False)

_NODE_READ = Permission("", ("nodes",), ("list", "watch"))
_POD_READ = Permission("", ("pods", "events"), ("list", "watch"))
# get: ctx.create looks for the Deployment before retrying a POST whose answer was lost.
_DEPLOYMENT_WRITE = Permission("apps", ("deployments",), ("create", "delete", "get", "patch"))


@dataclass(frozen=True)
class NodeGroup:
    """The nodes that must scale up, and what (if anything) records each new node's provisioning."""

    label_key: str
    label_value: str
    description: str
    """How reasons name the group, e.g. ``node group eks.amazonaws.com/capacityType=SPOT``."""
    claims: Resource | None = None
    """Objects created per new node and selected by the same label (Karpenter's NodeClaims)."""

    @property
    def selector(self) -> str:
        """The label selector of the group's nodes (and claims)."""
        return f"{self.label_key}={self.label_value}"


class NodeScaleUpCheck(Check):
    """The family's proof; subclasses say which node group (:meth:`find_node_group`)."""

    exclusive = "node-count"
    timeout = 1800.0
    tags = frozenset({"autoscaling", "nodes"})
    creates = ("Namespace <check>-test-YYYYMMDD-xxxxx", f"Deployment {PROBE_NAME} (N+1 replicas, one per node)")

    async def find_node_group(self, ctx: CheckContext) -> NodeGroup:
        """Which nodes must scale up on this cluster (may ``ctx.skip`` or ``ctx.fail``)."""
        raise NotImplementedError

    async def run(self, ctx: CheckContext) -> None:
        """Count, create the probe, wait for the new node(s), report them; optionally see them go."""
        async with ctx.step("find node group"):
            group = await self.find_node_group(ctx)
        tolerations = ctx.options[TOLERATIONS]
        nodes = Mirror(ctx.kube, NODES, label_selector=group.selector)
        claims = None if group.claims is None else Mirror(ctx.kube, group.claims, label_selector=group.selector)
        async with anyio.create_task_group() as watchers:
            async with ctx.step("count schedulable nodes"):
                # The watches start before the Deployment exists, so no joining node can be missed.
                await watchers.start(nodes.run)
                if claims is not None:
                    await watchers.start(claims.run)
                nodes_before, claims_before = set(nodes.objects), set(claims.objects if claims else ())
                schedulable = self._count_schedulable(ctx, group, nodes.objects.values(), tolerations)
            replicas = initial_replicas = len(schedulable) + 1
            async with ctx.step("create probe Deployment"):
                namespace = await ctx.namespace()
                await ctx.create(DEPLOYMENTS, probe_deployment(ctx, group, replicas, tolerations), namespace)
                created_at = anyio.current_time()
            pods = Mirror(ctx.kube, PODS, namespace, label_selector=f"app.kubernetes.io/name={PROBE_NAME}")
            events = Mirror(ctx.kube, EVENTS, namespace)
            progress = ProbeProgress(ctx, pods, events, replicas)
            events.on_change(lambda _changes: progress.all_ready())
            async with ctx.step("wait for scale-up", timeout=ctx.options[SCALE_UP_TIMEOUT]):
                await watchers.start(pods.run)
                await watchers.start(events.run)
                while True:
                    await pods.wait_until(progress.all_ready)
                    if _hosts(pods) - nodes_before:
                        break
                    # Every replica found room on a node that was there before: one that was not
                    # schedulable when counted (NotReady, tainted, cordoned) has recovered. One more
                    # replica per recovery; at len(nodes_before) + 1 a new node is needed whatever happens.
                    replicas = progress.replicas = replicas + 1
                    ctx.log.info("probe.replicas_raised", replicas=replicas, hosts=sorted(_hosts(pods)))
                    await ctx.kube.patch(DEPLOYMENTS, PROBE_NAME, {"spec": {"replicas": replicas}}, namespace)
                took = anyio.current_time() - created_at
                if replicas > initial_replicas:
                    ctx.fact(
                        "probe replicas", f"{replicas}, raised from {initial_replicas}: a node not counted recovered"
                    )
            async with ctx.step("report joined nodes"):
                joined = sorted(set(nodes.first_seen) - nodes_before)
                self._report_joined(ctx, nodes, pods, joined, created_at, took, replicas)
                new_claims = sorted(set(claims.first_seen) - claims_before) if claims is not None else []
                if claims is not None:
                    self._report_claims(ctx, group, claims, new_claims, created_at)
            if ctx.options[VERIFY_SCALE_DOWN]:
                async with ctx.step("wait for scale-down", timeout=ctx.options[SCALE_DOWN_TIMEOUT]):
                    started = anyio.current_time()
                    await ctx.kube.delete(DEPLOYMENTS, PROBE_NAME, namespace, propagation="Foreground")
                    gone = set(joined) | set(new_claims)
                    await nodes.wait_until(lambda mirror: _progress_gone(ctx, mirror, claims, gone))
                    if claims is not None:
                        await claims.wait_until(lambda mirror: _progress_gone(ctx, nodes, mirror, gone))
                    ctx.fact(
                        "scale-down",
                        f"{', '.join(sorted(gone))} removed {anyio.current_time() - started:.1f}s "
                        "after the probe was deleted",
                    )
            watchers.cancel_scope.cancel()

    def _count_schedulable(
        self, ctx: CheckContext, group: NodeGroup, nodes: Any, tolerations: Sequence[Toleration]
    ) -> list[str]:
        schedulable, excluded = [], []
        for node in nodes:
            name = node["metadata"]["name"]
            why = why_unschedulable(node, tolerations)
            if why is None:
                schedulable.append(name)
            else:
                excluded.append(f"{name} ({why})")
        text = f"{len(schedulable)}" + (f" ({', '.join(sorted(schedulable))})" if schedulable else "")
        if excluded:
            text += f"; not counted: {', '.join(sorted(excluded))}"
        ctx.fact("schedulable nodes before", text)
        ctx.log.info("nodes.counted", group=group.selector, schedulable=len(schedulable), excluded=len(excluded))
        return schedulable

    def _report_joined(
        self,
        ctx: CheckContext,
        nodes: Mirror,
        pods: Mirror,
        joined: list[str],
        created_at: float,
        took: float,
        replicas: int,
    ) -> None:
        hosts = _hosts(pods)
        described = [
            f"{name} (after {nodes.first_seen[name] - created_at:.1f}s"
            + (", hosts a probe pod)" if name in hosts else ", no probe pod on it)")
            for name in joined
        ]
        ctx.fact("nodes joined", ", ".join(described))
        ctx.fact("scale-up took", f"{took:.1f}s from creating the Deployment until {replicas}/{replicas} Ready")

    def _report_claims(
        self, ctx: CheckContext, group: NodeGroup, claims: Mirror, new_claims: list[str], created_at: float
    ) -> None:
        if not new_claims:
            ctx.fail(f"a node joined but no {claims.resource.kind} was created for the {group.description}")
        described = []
        for name in new_claims:
            claim = claims.objects.get(name, {})
            node_name = claim.get("status", {}).get("nodeName") or "no node yet"
            described.append(f"{name} (node {node_name}, created {claims.first_seen[name] - created_at:.1f}s after)")
        ctx.fact(f"{claims.resource.kind} created", ", ".join(described))


class ClusterAutoscalerCheck(NodeScaleUpCheck):
    """cluster-autoscaler adds a node to the node group selected by ``node-label-key=node-label-value``."""

    name = "cluster-autoscaler"
    description = "cluster-autoscaler adds a node when a pod of the node group cannot be scheduled."
    options = (NODE_LABEL_KEY, NODE_LABEL_VALUE, *COMMON_OPTIONS, AUTOSCALER_WORKLOAD)
    permissions = (_NODE_READ, _POD_READ, _DEPLOYMENT_WRITE, WORKLOAD_READ)

    async def find_node_group(self, ctx: CheckContext) -> NodeGroup:
        """The group given by the node label options."""
        await report_addon_version(ctx, "cluster-autoscaler", ctx.options[AUTOSCALER_WORKLOAD])
        key, value = ctx.options[NODE_LABEL_KEY], ctx.options[NODE_LABEL_VALUE]
        return NodeGroup(key, value, f"node group {key}={value}")


class KarpenterCheck(NodeScaleUpCheck):
    """Karpenter provisions a node (and its NodeClaim) for a NodePool."""

    name = "karpenter"
    description = "Karpenter provisions a node of a NodePool (reports its NodeClaim) for a pod that needs one."
    options = (KARPENTER_NODEPOOL, *COMMON_OPTIONS, KARPENTER_WORKLOAD)
    permissions = (
        _NODE_READ,
        _POD_READ,
        _DEPLOYMENT_WRITE,
        Permission("karpenter.sh", ("nodepools",), ("list",)),
        Permission("karpenter.sh", ("nodeclaims",), ("list", "watch")),
        WORKLOAD_READ,  # Karpenter's version
    )

    async def find_node_group(self, ctx: CheckContext) -> NodeGroup:
        """The NodePool named by ``karpenter-nodepool``; SKIPPED where Karpenter's API is not served."""
        await report_addon_version(ctx, "karpenter", ctx.options[KARPENTER_WORKLOAD])
        pool = ctx.options[KARPENTER_NODEPOOL]
        try:
            listed = await ctx.kube.list(NODEPOOLS)
        except KubeApiError as error:
            if error.status == 404:
                ctx.skip(f"the {NODEPOOLS.api_version} API is not served here: Karpenter is not installed")
            raise
        names = sorted(item["metadata"]["name"] for item in listed["items"])
        if pool not in names:
            ctx.fail(f"NodePool {pool!r} does not exist; NodePools here: {', '.join(names) or 'none'}")
        ctx.fact("NodePool", pool)
        return NodeGroup(NODEPOOL_LABEL, pool, f"NodePool {pool}", claims=NODECLAIMS)


def probe_deployment(
    ctx: CheckContext, group: NodeGroup, replicas: int, tolerations: Sequence[Toleration]
) -> KubeObject:
    """N+1 tiny pods, each required on its own node of ``group``."""
    selector = {"app.kubernetes.io/name": PROBE_NAME}
    return {
        "metadata": {"name": PROBE_NAME},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**selector, **ctx.labels}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "tolerations": list(tolerations),
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": group.label_key, "operator": "In", "values": [group.label_value]}
                                        ]
                                    }
                                ]
                            }
                        },
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {"labelSelector": {"matchLabels": selector}, "topologyKey": "kubernetes.io/hostname"}
                            ]
                        },
                    },
                    "containers": [
                        {
                            "name": "pause",
                            "image": ctx.options[PROBE_IMAGE],
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "16Mi"},
                                "limits": {"memory": "16Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "runAsNonRoot": True,
                                "runAsUser": 65535,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def _pod_ready(pod: KubeObject) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return not pod["metadata"].get("deletionTimestamp") and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


@dataclass
class ProbeProgress:
    """Whether the probe is fully Ready, and what to tell while it is not (the step's progress)."""

    ctx: CheckContext
    pods: Mirror
    events: Mirror
    replicas: int

    def all_ready(self, _mirror: Mirror | None = None) -> bool:
        """Whether ``replicas`` probe pods are Ready; records e.g. ``2/3 ready, 1 Pending: FailedScheduling:
        0/4 nodes are available: …; cluster-autoscaler: NotTriggerScaleUp: …``."""
        live = [pod for pod in self.pods.objects.values() if not pod["metadata"].get("deletionTimestamp")]
        ready = sum(1 for pod in live if _pod_ready(pod))
        detail = f"{ready}/{self.replicas} ready"
        unschedulable = Counter(message for pod in live if (message := unschedulable_message(pod)) is not None)
        for message, count in unschedulable.most_common():
            detail += f", {count} Pending: FailedScheduling: {message}"
        starting = sorted(
            str(pod["spec"]["nodeName"]) for pod in live if pod.get("spec", {}).get("nodeName") and not _pod_ready(pod)
        )
        if starting:
            detail += f", {len(starting)} starting on {', '.join(starting)}"
        unbound = {pod["metadata"]["name"] for pod in live if not pod.get("spec", {}).get("nodeName")}
        waiting = sum(1 for pod in live if pod["metadata"]["name"] in unbound and unschedulable_message(pod) is None)
        if waiting:
            detail += f", {waiting} not yet scheduled"
        said = self._autoscaler_said(unbound)
        if said:
            detail += f"; {said}"
        self.ctx.progress(detail)
        return ready >= self.replicas

    def _autoscaler_said(self, pod_names: set[str]) -> str | None:
        """The latest Event an autoscaler recorded on one of ``pod_names`` (why it did or did not scale)."""
        said = [
            event
            for event in self.events.objects.values()
            if _event_source(event) in AUTOSCALER_COMPONENTS
            and event.get("involvedObject", {}).get("name") in pod_names
        ]
        if not said:
            return None
        latest = max(said, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        return f"{_event_source(latest)}: {latest.get('reason')}: {latest.get('message')}"


def _event_source(event: KubeObject) -> str:
    return str(event.get("reportingComponent") or event.get("source", {}).get("component") or "")


def _hosts(pods: Mirror) -> set[str]:
    """The nodes the probe's live pods are bound to."""
    return {
        str(pod["spec"]["nodeName"])
        for pod in pods.objects.values()
        if pod.get("spec", {}).get("nodeName") and not pod["metadata"].get("deletionTimestamp")
    }


def _progress_gone(ctx: CheckContext, nodes: Mirror, claims: Mirror | None, gone: set[str]) -> bool:
    remaining = sorted((set(nodes.objects) | set(claims.objects if claims else ())) & gone)
    ctx.progress(f"still there: {', '.join(remaining)}" if remaining else "all removed")
    return not remaining
