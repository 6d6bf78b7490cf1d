"""The node scale-up checks: one more pod than the node group has schedulable nodes, one pod per node.

Both checks count the Ready, schedulable nodes of a group (N), create a Deployment of N+1 replicas that
must each land on their own node of that group (required node affinity to the group's label, required
pod anti-affinity on ``kubernetes.io/hostname``), and pass when every replica is Ready on a node that
joined after the count. ``cluster-autoscaler`` selects the group by any node label; ``karpenter`` by a
NodePool (``karpenter.sh/nodepool``) and also reports the NodeClaim Karpenter created. They are two
checks rather than one check with a mode so each has its own name in reports and its own SKIPPED
answer: ``run --all`` on a cluster without Karpenter skips ``karpenter`` instead of failing it.

``karpenter`` also reads Karpenter's own answers while it waits (``sigs.k8s.io/karpenter`` v1 API):
the NodePool's ``Ready`` condition and limits, each NodeClaim's ``Launched``/``Registered``/
``Initialized`` conditions, and the Events Karpenter's provisioner records on the probe pods
(``Nominated``, ``FailedScheduling``), so a refusal or a Karpenter that does not act is NG with its
reason instead of a timeout.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from kibertas_async import (
    DEPLOYMENTS,
    EVENTS,
    NODES,
    PODS,
    WORKLOAD_READ,
    Change,
    Check,
    CheckContext,
    KubeApiError,
    KubeObject,
    Permission,
    Resource,
    format_duration,
    report_addon_version,
)
from kibertas_async_cluster_autoscaler.mirror import Mirror, Wakeup
from kibertas_async_cluster_autoscaler.options import (
    AUTOSCALER_WORKLOAD,
    COMMON_OPTIONS,
    KARPENTER_NODEPOOL,
    KARPENTER_RESPONSE_TIMEOUT,
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

PROBE_NAME = "scale-up-probe"
"""Name of the Deployment (and the ``app.kubernetes.io/name`` of its pods)."""
NODEPOOL_LABEL = "karpenter.sh/nodepool"
NODEPOOLS = Resource("karpenter.sh", "v1", "nodepools", "NodePool", namespaced=False)
NODECLAIMS = Resource("karpenter.sh", "v1", "nodeclaims", "NodeClaim", namespaced=False)
NODECLAIM_STAGES = ("Launched", "Registered", "Initialized")
"""A NodeClaim's lifecycle conditions in order (``NodeClaim.StatusConditions`` of Karpenter's v1 API):
its ``Ready`` is all three."""
KARPENTER_REFUSAL = "FailedScheduling"
"""The Event reason of Karpenter's provisioner when its scheduling simulation finds no way to place a pod
(``PodFailedToScheduleEvent``); ``Nominated`` when it has a node or NodeClaim for it."""

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
    event_sources: frozenset[str] = frozenset()
    """``source.component`` of the autoscaler whose Events on the probe pods say why it did (not) scale."""

    async def find_node_group(self, ctx: CheckContext) -> NodeGroup:
        """Which nodes must scale up on this cluster (may ``ctx.skip`` or ``ctx.fail``)."""
        raise NotImplementedError

    async def judge_scale_up(self, ctx: CheckContext, wait: ScaleUpWait) -> float:
        """Called whenever something changed while waiting for scale-up: may end the check (``ctx.fail``)
        when the autoscaler's own answer rules a scale-up out; returns when (``anyio.current_time()``) to
        judge again if nothing changes. The family's default: never, the step's timeout decides."""
        return math.inf

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
            progress = ProbeProgress(ctx, pods, self.event_sources, replicas, claims, claims_before)
            events.on_change(progress.note_events)
            # Any change of any collection looks again: a condition over two of them waited on one alone
            # is not looked at when the other changes last.
            wakeup = Wakeup(pods, events, nodes, *([claims] if claims is not None else []))
            wait = ScaleUpWait(group, pods, progress, claims, claims_before)
            async with ctx.step("wait for scale-up", timeout=ctx.options[SCALE_UP_TIMEOUT]):
                await watchers.start(pods.run)
                await watchers.start(events.run)
                while True:
                    await wakeup.until(progress.all_ready, lambda: self.judge_scale_up(ctx, wait))
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
                    self._report_claims(ctx, group, claims, nodes, new_claims, created_at)
            if ctx.options[VERIFY_SCALE_DOWN]:
                async with ctx.step("wait for scale-down", timeout=ctx.options[SCALE_DOWN_TIMEOUT]):
                    started = anyio.current_time()
                    await ctx.kube.delete(DEPLOYMENTS, PROBE_NAME, namespace, propagation="Foreground")
                    gone = set(joined) | set(new_claims)
                    await wakeup.until(lambda: _progress_gone(ctx, nodes, claims, gone))
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
        self,
        ctx: CheckContext,
        group: NodeGroup,
        claims: Mirror,
        nodes: Mirror,
        new_claims: list[str],
        created_at: float,
    ) -> None:
        if not new_claims:
            ctx.fail(f"a node joined but no {claims.resource.kind} was created for the {group.description}")
        by_provider = {
            str(node.get("spec", {}).get("providerID")): name
            for name, node in nodes.objects.items()
            if node.get("spec", {}).get("providerID")
        }
        described = []
        for name in new_claims:
            status = claims.objects.get(name, {}).get("status") or {}
            # status.nodeName comes with registration, a moment after the node appears; the providerID
            # (set at launch) already names the same machine.
            node_name = status.get("nodeName") or by_provider.get(str(status.get("providerID"))) or "no node yet"
            described.append(f"{name} (node {node_name}, created {claims.first_seen[name] - created_at:.1f}s after)")
        ctx.fact(f"{claims.resource.kind} created", ", ".join(described))


class ClusterAutoscalerCheck(NodeScaleUpCheck):
    """cluster-autoscaler adds a node to the node group selected by ``node-label-key=node-label-value``."""

    name = "cluster-autoscaler"
    description = "cluster-autoscaler adds a node when a pod of the node group cannot be scheduled."
    options = (NODE_LABEL_KEY, NODE_LABEL_VALUE, *COMMON_OPTIONS, AUTOSCALER_WORKLOAD)
    permissions = (_NODE_READ, _POD_READ, _DEPLOYMENT_WRITE, WORKLOAD_READ)
    event_sources = frozenset({"cluster-autoscaler"})

    async def find_node_group(self, ctx: CheckContext) -> NodeGroup:
        """The group given by the node label options."""
        await report_addon_version(ctx, "cluster-autoscaler", ctx.options[AUTOSCALER_WORKLOAD])
        key, value = ctx.options[NODE_LABEL_KEY], ctx.options[NODE_LABEL_VALUE]
        return NodeGroup(key, value, f"node group {key}={value}")


class KarpenterCheck(NodeScaleUpCheck):
    """Karpenter provisions a node (and its NodeClaim) for a NodePool."""

    name = "karpenter"
    description = "Karpenter provisions a node of a NodePool (reports its NodeClaim) for a pod that needs one."
    options = (KARPENTER_NODEPOOL, *COMMON_OPTIONS, KARPENTER_RESPONSE_TIMEOUT, KARPENTER_WORKLOAD)
    permissions = (
        _NODE_READ,
        _POD_READ,
        _DEPLOYMENT_WRITE,
        Permission("karpenter.sh", ("nodepools",), ("list",)),
        Permission("karpenter.sh", ("nodeclaims",), ("list", "watch")),
        WORKLOAD_READ,  # Karpenter's version
    )
    event_sources = frozenset({"karpenter"})

    async def find_node_group(self, ctx: CheckContext) -> NodeGroup:
        """The NodePool named by ``karpenter-nodepool``; SKIPPED where Karpenter's API is not served, NG
        when the NodePool is missing or Karpenter marked it not Ready (it provisions nothing from it then)."""
        await report_addon_version(ctx, "karpenter", ctx.options[KARPENTER_WORKLOAD])
        name = ctx.options[KARPENTER_NODEPOOL]
        try:
            listed = await ctx.kube.list(NODEPOOLS)
        except KubeApiError as error:
            if error.status == 404:
                ctx.skip(f"the {NODEPOOLS.api_version} API is not served here: Karpenter is not installed")
            raise
        pools = {item["metadata"]["name"]: item for item in listed["items"]}
        if name not in pools:
            ctx.fail(f"NodePool {name!r} does not exist; NodePools here: {', '.join(sorted(pools)) or 'none'}")
        ctx.fact("NodePool", name)
        pool = pools[name]
        ready = _condition(pool, "Ready")
        if ready is not None and ready.get("status") == "False":
            ctx.fail(f"NodePool {name} is not Ready: {describe_nodepool(pool)}")
        if pool.get("spec", {}).get("limits"):
            ctx.fact("NodePool limits", describe_nodepool(pool))
        return NodeGroup(NODEPOOL_LABEL, name, f"NodePool {name}", claims=NODECLAIMS)

    async def judge_scale_up(self, ctx: CheckContext, wait: ScaleUpWait) -> float:
        """NG on Karpenter's own refusal, or on its silence.

        Refusal: Karpenter's latest Event on a pending probe pod is ``FailedScheduling`` (its simulation,
        with every in-flight NodeClaim counted, found no way to place the pod: the NodePool's limits, no
        compatible instance type, ...); it does not change its mind unless the cluster changes. Silence:
        ``karpenter-response-timeout`` after the scheduler first marked a probe pod Unschedulable, Karpenter
        has created no NodeClaim and recorded no Event on any probe pod (its batching waits 1 to 10 s).
        """
        progress = wait.progress
        refused = sorted(
            (
                (order, event)
                for pod_name, (order, event) in progress.said.items()
                if pod_name in progress.pending and event.get("reason") == KARPENTER_REFUSAL
            ),
            key=lambda entry: entry[0],
        )
        if refused:
            _order, latest = refused[-1]
            pool = await self._nodepool(ctx, wait.group.label_value)
            about_pool = f"; NodePool {wait.group.label_value}: {describe_nodepool(pool)}" if pool else ""
            ctx.fail(
                f"Karpenter will not provision a node for {len(refused)} probe pod(s): "
                f"karpenter: {KARPENTER_REFUSAL}: {latest.get('message')}{about_pool}"
            )
        since = progress.unschedulable_since
        if since is None or progress.said or wait.new_claims():
            return math.inf
        response_timeout = ctx.options[KARPENTER_RESPONSE_TIMEOUT]
        if anyio.current_time() - since < response_timeout:
            return since + response_timeout
        ctx.fail(
            f"Karpenter did not act within {format_duration(response_timeout)} of the probe pods becoming "
            f"Unschedulable: no NodeClaim for NodePool {wait.group.label_value} and no Event from karpenter "
            f"on {len(progress.pending)} pending probe pod(s); its controller is not running, or not "
            "provisioning for this NodePool"
        )
        return math.inf  # not reached: ctx.fail raised

    async def _nodepool(self, ctx: CheckContext, name: str) -> KubeObject | None:
        """The NodePool as it is now (its status: resources in use, conditions), listed like at the start."""
        listed = await ctx.kube.list(NODEPOOLS)
        return next((item for item in listed["items"] if item["metadata"]["name"] == name), None)


@dataclass
class ScaleUpWait:
    """What :meth:`NodeScaleUpCheck.judge_scale_up` sees while the probe waits for its nodes."""

    group: NodeGroup
    pods: Mirror
    progress: ProbeProgress
    claims: Mirror | None
    claims_before: set[str]

    def new_claims(self) -> list[str]:
        """Claims (NodeClaims) that appeared since the nodes were counted, deleted ones included."""
        return [] if self.claims is None else sorted(set(self.claims.first_seen) - self.claims_before)


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def _reason_text(condition: Mapping[str, Any]) -> str:
    return ": ".join(str(part) for part in (condition.get("reason"), condition.get("message")) if part)


def _condition_text(condition: Mapping[str, Any]) -> str:
    why = _reason_text(condition)
    return f"{condition.get('type')}={condition.get('status')}" + (f" ({why})" if why else "")


def describe_nodepool(pool: Mapping[str, Any]) -> str:
    """A NodePool's limits against what it has provisioned, and its conditions that are not True, e.g.
    ``limits cpu=1; in use cpu=0, nodes=0`` or ``NodeClassReady=False (NodeClassNotReady: ...)``."""
    parts = []
    limits = pool.get("spec", {}).get("limits") or {}
    if limits:
        in_use = (pool.get("status") or {}).get("resources") or {}
        parts.append("limits " + ", ".join(f"{key}={value}" for key, value in sorted(limits.items())))
        used = [f"{key}={in_use[key]}" for key in sorted({*limits, "nodes"}) if key in in_use]
        if used:
            parts.append("in use " + ", ".join(used))
    not_true = [c for c in (pool.get("status") or {}).get("conditions") or [] if c.get("status") != "True"]
    # NodeRegistrationHealthy is Unknown until a node of the pool has registered: no news, not a problem.
    parts += [_condition_text(c) for c in not_true if c.get("type") != "NodeRegistrationHealthy"]
    return "; ".join(parts) or "Ready"


def describe_nodeclaim(claim: Mapping[str, Any]) -> str:
    """Where a NodeClaim is in Karpenter's lifecycle, e.g. ``default-x7k2p: Launched; waiting for
    Registered (NodeNotFound: Node not registered with cluster)`` or ``default-x7k2p: Initialized, node N``."""
    name = claim["metadata"]["name"]
    if claim["metadata"].get("deletionTimestamp"):
        return f"{name}: being deleted"
    done = []
    for stage in NODECLAIM_STAGES:
        condition = _condition(claim, stage)
        if condition is not None and condition.get("status") == "True":
            done.append(stage)
            continue
        if condition is None or condition.get("status") == "Unknown":
            why = _reason_text(condition or {})
            state = f"waiting for {stage}" + (f" ({why})" if why else "")
        else:
            state = _condition_text(condition)
        return f"{name}: " + "; ".join([*([", ".join(done)] if done else []), state])
    node = (claim.get("status") or {}).get("nodeName")
    return f"{name}: {NODECLAIM_STAGES[-1]}" + (f", node {node}" if node else "")


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
    sources: frozenset[str]
    """The autoscaler's Event sources (``source.component``) worth quoting."""
    replicas: int
    claims: Mirror | None = None
    claims_before: set[str] = field(default_factory=set)
    said: dict[str, tuple[int, KubeObject]] = field(default_factory=dict)
    """Probe pod name → (arrival order, the latest Event the autoscaler recorded on it). Arrival order,
    not ``lastTimestamp``: two Events within one second have the same timestamp."""
    pending: set[str] = field(default_factory=set)
    """Live probe pods not yet bound to a node, as of the last look."""
    unschedulable_since: float | None = None
    """``anyio.current_time()`` when the scheduler was first seen marking a probe pod Unschedulable."""
    _arrivals: itertools.count[int] = field(default_factory=itertools.count)

    def note_events(self, changes: Sequence[Change]) -> None:
        """Keep the autoscaler's latest word per probe pod (an events informer's ``on_change``)."""
        for change in changes:
            if change.type != "DELETED" and _event_source(change.object) in self.sources:
                involved = change.object.get("involvedObject", {})
                if involved.get("kind", "Pod") == "Pod" and involved.get("name"):
                    self.said[str(involved["name"])] = (next(self._arrivals), change.object)
        self.all_ready()

    def all_ready(self) -> bool:
        """Whether ``replicas`` probe pods are Ready; records e.g. ``2/3 ready, 1 Pending: FailedScheduling:
        0/4 nodes are available: …; cluster-autoscaler: NotTriggerScaleUp: …`` (for Karpenter, also where
        each new NodeClaim is in its lifecycle)."""
        live = [pod for pod in self.pods.objects.values() if not pod["metadata"].get("deletionTimestamp")]
        ready = sum(1 for pod in live if _pod_ready(pod))
        detail = f"{ready}/{self.replicas} ready"
        unschedulable = Counter(message for pod in live if (message := unschedulable_message(pod)) is not None)
        if unschedulable and self.unschedulable_since is None:
            self.unschedulable_since = anyio.current_time()
        for message, count in unschedulable.most_common():
            detail += f", {count} Pending: FailedScheduling: {message}"
        starting = sorted(
            str(pod["spec"]["nodeName"]) for pod in live if pod.get("spec", {}).get("nodeName") and not _pod_ready(pod)
        )
        if starting:
            detail += f", {len(starting)} starting on {', '.join(starting)}"
        self.pending = {pod["metadata"]["name"] for pod in live if not pod.get("spec", {}).get("nodeName")}
        pending = [pod for pod in live if pod["metadata"]["name"] in self.pending]
        waiting = sum(1 for pod in pending if unschedulable_message(pod) is None)
        if waiting:
            detail += f", {waiting} not yet scheduled"
        said = self._autoscaler_said(self.pending)
        if said:
            detail += f"; {said}"
        if self.claims is not None:
            new = [claim for key, claim in sorted(self.claims.objects.items()) if key not in self.claims_before]
            if new:
                detail += "; " + "; ".join(f"{self.claims.resource.kind} {describe_nodeclaim(c)}" for c in new)
        self.ctx.progress(detail)
        return ready >= self.replicas

    def _autoscaler_said(self, pod_names: set[str]) -> str | None:
        """The latest Event the autoscaler recorded on one of ``pod_names`` (why it did or did not scale)."""
        said = [entry for name, entry in self.said.items() if name in pod_names]
        if not said:
            return None
        _order, latest = max(said, key=lambda entry: entry[0])
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
