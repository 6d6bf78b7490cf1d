"""The built-in diagnostics: what an SRE would look at next in the cluster when a check did not pass.

- the object the failing step was waiting on, as the watch last saw it (its status and conditions; never
  a Secret's data, never a spec, which may hold credentials);
- the events of the check's namespaces and of each add-on's namespace (those about its workload);
- the conditions and container states of the check's pods and of each add-on's pods;
- the last lines of each add-on controller's log (``pods/log``), or why there are none: no workload in
  the cluster (a controller running elsewhere), no pods, or a log the node does not serve.

Each part is a :class:`Finding` with a weight (a problem found beats a healthy summary); the parts run
concurrently, each bounded by the context's deadline, and come back heaviest first. An API error (a
403, say) becomes a line saying so, never a failure.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from kibertas_async.diagnostics.collect import one_line
from kibertas_async.diagnostics.sources import MAX_LINES, REQUEST_TIMEOUT, AddonWorkload, DiagnosticsContext
from kibertas_async.kube.errors import KubeApiError, KubeUnavailable
from kibertas_async.kube.resources import DAEMONSETS, DEPLOYMENTS, EVENTS, PODS
from kibertas_async.results import Diagnostic

if TYPE_CHECKING:
    from kibertas_async.checks.context import WaitedOn
    from kibertas_async.kube.client import KubeClient, KubeObject

PROBLEM, NOTABLE, ROUTINE, NOTHING = 3, 2, 1, 0
"""Weights of a finding: a problem seen, something worth reading, a healthy summary, nothing to say."""
PODS_PER_GROUP = 3
"""Pods described per namespace or workload (problem pods first)."""
LOG_BYTES = 16_384
"""The most of a log asked for (its last ``MAX_LINES`` lines)."""
NAME_LABEL = "app.kubernetes.io/name"
MARGIN = 0.3
"""Seconds kept before the deadline, so the parts' results are returned in time."""


@dataclass(frozen=True)
class Finding:
    """One diagnostic and how telling it is."""

    weight: int
    diagnostic: Diagnostic


def _api_problem(error: Exception, what: str) -> str:
    if isinstance(error, KubeApiError) and error.status == 403:
        return f"not allowed to {what} (403): {error.message}"
    return f"could not {what}: {error}"


class KubernetesDiagnostics:
    """The built-in source (see the module docstring)."""

    name = "kubernetes"

    async def collect(self, context: DiagnosticsContext) -> list[Diagnostic]:
        """Every part at once, heaviest first; parts still running at the deadline are left out."""
        kube = context.kube
        if kube is None:
            return []
        parts: list[Callable[[], Awaitable[list[Finding]]]] = []
        if context.waited_on is not None and not context.waited_on.done:
            waited = context.waited_on
            parts.append(lambda: _waited_on(waited, context))
        for namespace in context.namespaces:
            parts += [
                functools.partial(_namespace_events, kube, namespace),
                functools.partial(_namespace_pods, kube, namespace),
            ]
        parts += [functools.partial(_addon, kube, addon) for addon in context.addons]
        findings: list[list[Finding]] = [[] for _ in parts]

        async def run(index: int, part: Callable[[], Awaitable[list[Finding]]]) -> None:
            findings[index] = await part()

        with anyio.move_on_after(max(0.0, context.time_left() - MARGIN)):
            async with anyio.create_task_group() as group:
                for index, part in enumerate(parts):
                    group.start_soon(run, index, part)
        ordered = sorted((f for found in findings for f in found), key=lambda f: -f.weight)
        return [finding.diagnostic for finding in ordered]


async def _bounded_request(action: Callable[[], Awaitable[Any]]) -> Any:
    with anyio.fail_after(REQUEST_TIMEOUT):
        return await action()


# --- the object a step waited on ------------------------------------------------------------------


async def _waited_on(waited: WaitedOn, context: DiagnosticsContext) -> list[Finding]:
    source = f"waited on {waited.describe()}"
    step = next((s for s in reversed(context.steps) if s.name == context.result.step), None)
    if not waited.seen:
        return [Finding(PROBLEM, Diagnostic(source, "the API server had not listed it yet"))]
    obj = waited.last
    if obj is None:
        return [Finding(PROBLEM, Diagnostic(source, "absent when last seen"))]
    lines = describe_object(obj)
    summary = (step.detail if step is not None and step.detail else "") or _condition_summary(obj) or "as last seen"
    return [Finding(PROBLEM, Diagnostic(source, f"{waited.describe()}: {summary}", lines))]


def describe_object(obj: KubeObject) -> list[str]:
    """An object's state as lines: its bookkeeping, each condition, each other status field. A Secret
    shows its data keys only; specs are left out (they may hold credentials)."""
    metadata = obj.get("metadata") or {}
    lines = [
        f"resourceVersion {metadata.get('resourceVersion', '?')}, generation {metadata.get('generation', '-')}"
        + (f", being deleted since {metadata['deletionTimestamp']}" if metadata.get("deletionTimestamp") else "")
    ]
    if obj.get("kind") == "Secret" or ("data" in obj and "type" in obj and "status" not in obj):
        lines.append(f"data keys: {', '.join(sorted(obj.get('data') or {})) or 'none'}")
        return lines
    status = obj.get("status") or {}
    if not status:
        lines.append("no status")
    for condition in status.get("conditions") or []:
        lines.append(_condition_line(condition))
    for key, value in status.items():
        if key != "conditions":
            lines.append(f"status.{key}: {json.dumps(value, sort_keys=True, separators=(',', ':'))}")
    return lines


def _condition_line(condition: dict[str, Any]) -> str:
    reason = f" ({condition['reason']})" if condition.get("reason") else ""
    message = f": {condition['message']}" if condition.get("message") else ""
    return f"{condition.get('type', '?')}={condition.get('status', '?')}{reason}{message}"


def _condition_summary(obj: KubeObject) -> str:
    conditions = ((obj.get("status") or {}).get("conditions")) or []
    bad = [c for c in conditions if c.get("status") != "True"]
    return _condition_line(bad[0]) if bad else ""


# --- events -----------------------------------------------------------------------------------------


def _event_time(event: KubeObject) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("series") or {}).get("lastObservedTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def event_line(event: KubeObject) -> str:
    """``2026-12-01T22:40:01Z Warning FailedScheduling Pod/sample-x: 0/4 nodes are available (x3)``."""
    involved = event.get("involvedObject") or {}
    count = event.get("count") or (event.get("series") or {}).get("count") or 1
    times = f" (x{count})" if int(count) > 1 else ""
    return (
        f"{_event_time(event)} {event.get('type', '?')} {event.get('reason', '?')} "
        f"{involved.get('kind', '?')}/{involved.get('name', '?')}: {event.get('message', '')}{times}"
    )


def _events_finding(source: str, events: list[KubeObject], empty: str) -> Finding:
    events = sorted(events, key=_event_time)
    if not events:
        return Finding(NOTHING, Diagnostic(source, empty))
    lines = [event_line(event) for event in events[-MAX_LINES:]]
    warnings = [event for event in events if event.get("type") == "Warning"]
    if warnings:
        latest = warnings[-1]
        involved = latest.get("involvedObject") or {}
        title = (
            f"{len(warnings)} warning(s), latest {latest.get('reason', '?')} on "
            f"{involved.get('kind', '?')}/{involved.get('name', '?')}: {latest.get('message', '')}"
        )
        return Finding(NOTABLE, Diagnostic(source, title, lines))
    return Finding(ROUTINE, Diagnostic(source, f"{len(events)} event(s), no warning", lines))


async def _namespace_events(kube: KubeClient, namespace: str) -> list[Finding]:
    source = f"events {namespace}"
    try:
        listed = await _bounded_request(lambda: kube.list(EVENTS, namespace))
    except (KubeApiError, KubeUnavailable, TimeoutError) as error:
        return [Finding(NOTHING, Diagnostic(source, _api_problem(error, f"list events in {namespace}")))]
    return [_events_finding(source, listed.get("items") or [], f"no events in {namespace}")]


# --- pods -------------------------------------------------------------------------------------------


def pod_problems(pod: KubeObject) -> list[str]:
    """What is wrong with a pod, most telling first (empty: Running, Ready, never restarted)."""
    status = pod.get("status") or {}
    problems: list[str] = []
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        state = container.get("state") or {}
        name = container.get("name", "?")
        for kind in ("waiting", "terminated"):
            detail = state.get(kind)
            if detail and detail.get("reason") not in (None, "Completed"):
                message = f": {detail['message']}" if detail.get("message") else ""
                problems.append(f"container {name} {kind}: {detail.get('reason')}{message}")
        if container.get("restartCount"):
            last = ((container.get("lastState") or {}).get("terminated")) or {}
            why = f", last {last.get('reason')} exit {last.get('exitCode')}" if last else ""
            problems.append(f"container {name} restarted {container['restartCount']} time(s){why}")
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True" and condition.get("type") in ("PodScheduled", "Ready"):
            problems.append(_condition_line(condition))
    if status.get("phase") not in ("Running", "Succeeded") and not problems:
        message = f": {status['message']}" if status.get("message") else ""
        problems.append(f"phase {status.get('phase', 'unknown')}{message}")
    return problems


def describe_pod(pod: KubeObject) -> Diagnostic:
    """A pod's phase, node, conditions and container states."""
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    spec = pod.get("spec") or {}
    source = f"pod {metadata.get('namespace', '?')}/{metadata.get('name', '?')}"
    problems = pod_problems(pod)
    title = f"{status.get('phase', 'unknown')}: {problems[0]}" if problems else f"{status.get('phase')}, Ready"
    lines = [f"phase {status.get('phase', 'unknown')} on node {spec.get('nodeName') or '(not scheduled)'}"]
    lines += [_condition_line(condition) for condition in status.get("conditions") or []]
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        kind = next(iter(state), "unknown")
        reason = (state.get(kind) or {}).get("reason")
        lines.append(
            f"container {container.get('name')}: {kind}{f' ({reason})' if reason else ''}, "
            f"ready {container.get('ready')}, restarts {container.get('restartCount', 0)}"
        )
    lines += [problem for problem in problems if problem not in lines]
    return Diagnostic(source, title, lines)


def _pods_findings(pods: list[KubeObject], where: str) -> list[Finding]:
    """Up to :data:`PODS_PER_GROUP` pods, problem pods first; healthy ones as one summary when all are."""
    troubled = [pod for pod in pods if pod_problems(pod)]
    if not troubled:
        if not pods:
            return []
        names = ", ".join(str(p["metadata"].get("name")) for p in pods[:PODS_PER_GROUP])
        title = f"{len(pods)} pod(s) in {where}, all Running and Ready"
        return [Finding(ROUTINE, Diagnostic(f"pods {where}", title, [names, *describe_pod(pods[0]).lines]))]
    return [Finding(PROBLEM, describe_pod(pod)) for pod in troubled[:PODS_PER_GROUP]]


async def _namespace_pods(kube: KubeClient, namespace: str) -> list[Finding]:
    try:
        listed = await _bounded_request(lambda: kube.list(PODS, namespace))
    except (KubeApiError, KubeUnavailable, TimeoutError) as error:
        source = f"pods {namespace}"
        return [Finding(NOTHING, Diagnostic(source, _api_problem(error, f"list pods in {namespace}")))]
    return _pods_findings(listed.get("items") or [], namespace)


# --- an add-on's workload: its status, pods, events and log ------------------------------------------


def _selector(workload: KubeObject) -> str:
    labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


async def _find_workload(kube: KubeClient, addon: AddonWorkload) -> KubeObject | None:
    found: list[KubeObject] = []
    for resource in (DEPLOYMENTS, DAEMONSETS):
        listed = await _bounded_request(functools.partial(kube.list, resource, addon.workload.namespace))
        found += [{**item, "kind": resource.kind} for item in listed.get("items") or []]
    for name in addon.workload.names:
        for obj in found:
            metadata = obj.get("metadata") or {}
            if metadata.get("name") == name or (metadata.get("labels") or {}).get(NAME_LABEL) == name:
                return obj
    return None


def workload_status(workload: KubeObject) -> tuple[bool, str, list[str]]:
    """Whether the Deployment or DaemonSet has every pod it wants ready, a one-line summary, and lines."""
    metadata, spec, status = workload.get("metadata") or {}, workload.get("spec") or {}, workload.get("status") or {}
    name = f"{workload.get('kind')} {metadata.get('namespace')}/{metadata.get('name')}"
    if workload.get("kind") == "DaemonSet":
        wanted, ready = int(status.get("desiredNumberScheduled", 0)), int(status.get("numberReady", 0))
        summary = f"{ready}/{wanted} pods ready (scheduled on {status.get('currentNumberScheduled', 0)} nodes)"
    else:
        wanted, ready = int(spec.get("replicas", 1)), int(status.get("readyReplicas", 0))
        summary = f"{ready}/{wanted} replicas ready"
    healthy = wanted > 0 and ready >= wanted
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector")
    if wanted == 0:
        why = f": nodeSelector {json.dumps(node_selector, sort_keys=True)} matches no node" if node_selector else ""
        summary += f"; it wants no pod{why}"
    lines = [summary]
    if node_selector:
        lines.append(f"nodeSelector {json.dumps(node_selector, sort_keys=True)}")
    lines += [_condition_line(condition) for condition in status.get("conditions") or []]
    return healthy, f"{name}: {summary}", lines


async def _addon(kube: KubeClient, addon: AddonWorkload) -> list[Finding]:
    where = addon.workload.namespace
    source = f"workload {addon.workload}"
    try:
        workload = await _find_workload(kube, addon)
    except (KubeApiError, KubeUnavailable, TimeoutError) as error:
        problem = _api_problem(error, f"list Deployments and DaemonSets in {where}")
        return [Finding(NOTHING, Diagnostic(source, f"{addon.addon}: {problem}"))]
    if workload is None:
        looked_for = " or ".join(addon.workload.names)
        title = (
            f"{addon.addon}: no Deployment or DaemonSet {looked_for} in namespace {where}; "
            "if it runs outside the cluster, there are no pods, events or logs of it here"
        )
        return [Finding(ROUTINE, Diagnostic(source, title))]
    healthy, title, lines = workload_status(workload)
    findings = [Finding(ROUTINE if healthy else PROBLEM, Diagnostic(source, title, lines))]
    selector = _selector(workload)
    try:
        pods = (await _bounded_request(lambda: kube.list(PODS, where, label_selector=selector))).get("items") or []
    except (KubeApiError, KubeUnavailable, TimeoutError) as error:
        lines.append(_api_problem(error, f"list pods in {where}"))
        return findings
    findings += [f for f in _pods_findings(pods, f"{where} ({addon.addon})") if f.weight == PROBLEM]
    async with anyio.create_task_group() as group:
        extra: list[Finding] = []

        async def events() -> None:
            extra.extend(await _addon_events(kube, addon, workload, pods))

        async def log() -> None:
            extra.extend(await _addon_log(kube, addon, pods))

        group.start_soon(events)
        group.start_soon(log)
    return findings + extra


async def _addon_events(
    kube: KubeClient, addon: AddonWorkload, workload: KubeObject, pods: list[KubeObject]
) -> list[Finding]:
    """The events of the add-on's namespace about its workload, its ReplicaSets and its pods."""
    namespace = addon.workload.namespace
    source = f"events {namespace} ({addon.addon})"
    try:
        listed = await _bounded_request(lambda: kube.list(EVENTS, namespace))
    except (KubeApiError, KubeUnavailable, TimeoutError) as error:
        return [Finding(NOTHING, Diagnostic(source, _api_problem(error, f"list events in {namespace}")))]
    name = str(workload["metadata"].get("name"))
    pod_names = {str(pod["metadata"].get("name")) for pod in pods}
    ours = [
        event
        for event in listed.get("items") or []
        if str((event.get("involvedObject") or {}).get("name", "")).startswith(name)
        or (event.get("involvedObject") or {}).get("name") in pod_names
    ]
    return [_events_finding(source, ours, f"no events about {workload.get('kind')} {name} in {namespace}")]


def _pick_pod(pods: list[KubeObject]) -> KubeObject | None:
    """The pod whose log explains most: a troubled one first, else the oldest."""
    troubled = [pod for pod in pods if pod_problems(pod)]
    ranked = troubled or sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", "")))
    return ranked[0] if ranked else None


async def _addon_log(kube: KubeClient, addon: AddonWorkload, pods: list[KubeObject]) -> list[Finding]:
    namespace = addon.workload.namespace
    pod = _pick_pod(pods)
    if pod is None:
        source = f"log {namespace}/{addon.workload.names[0]}"
        return [Finding(NOTHING, Diagnostic(source, f"no logs: {addon.addon} has no pods"))]
    name = str(pod["metadata"]["name"])
    containers = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    container = next((c for c in containers if c in addon.workload.names), containers[0] if containers else "")
    source = f"log {namespace}/{name}"
    try:
        text = await _bounded_request(lambda: read_log(kube, namespace, name, container))
    except KubeApiError as error:
        # 404 or 400 from a node that serves no logs (kwok's do not), 403 without the pods/log grant.
        why = f"pods/log answered {error.status} {error.reason}: {error.message}"
        return [Finding(NOTHING, Diagnostic(source, f"no logs: {why}", [f"container {container}"]))]
    except (KubeUnavailable, TimeoutError) as error:
        why = _api_problem(error, f"read the log of {namespace}/{name}")
        return [Finding(NOTHING, Diagnostic(source, f"no logs: {why}", [f"container {container}"]))]
    lines = [line for line in text.splitlines() if line.strip()][-MAX_LINES:]
    if not lines:
        return [Finding(NOTHING, Diagnostic(source, f"no logs: container {container} has logged nothing"))]
    telling = next((line for line in reversed(lines) if _looks_bad(line)), lines[-1])
    return [Finding(NOTABLE, Diagnostic(source, one_line(telling), lines))]


def _looks_bad(line: str) -> bool:
    lowered = line.lower()
    return any(word in lowered for word in ("error", "fail", "denied", "forbidden", "level=warn", "panic"))


async def read_log(kube: KubeClient, namespace: str, pod: str, container: str) -> str:
    """The last :data:`MAX_LINES` lines of a container's log (``GET .../pods/NAME/log``, text, not JSON)."""
    query = {"tailLines": str(MAX_LINES), "limitBytes": str(LOG_BYTES)}
    if container:
        query["container"] = container
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
    return await kube.request_text(path, query=query, timeout=REQUEST_TIMEOUT)
