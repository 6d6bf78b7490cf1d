"""Sweeping a cluster of everything kibertas-async labelled: what ``kibertas-async cleanup`` does.

A run deletes what it created itself; a killed run (SIGKILL, node loss) cannot. Its objects carry our
labels wherever they are — in a namespace of their own, in a fixed namespace (``default``, the fluent
check's), or cluster-scoped — so the sweep asks the API server which kinds it serves (discovery: ``/api``,
``/apis`` and each group's preferred version), lists every kind that can be listed and deleted by the
label selector, deletes what carries our labels (checked again on each object, whatever the server
matched), namespaces last, then waits a bounded time and reports what is still there, with its
finalizers (the usual reason an object outlives its deletion).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio

from kibertas_async.checks.context import MANAGED_BY, MANAGED_BY_LABEL, RUN_ID_LABEL
from kibertas_async.errors import KibertasError
from kibertas_async.kube import ClusterTarget, KubeApiError, KubeClient, KubeObject, connect
from kibertas_async.kube.resources import NAMESPACES, Resource, resource_from_discovery

DEFAULT_WAIT = 60.0
"""Seconds to wait for deleted objects to disappear before reporting them as left behind."""

_LIST_CONCURRENCY = 8
_POLL_INTERVAL = 1.0


def label_selector(run_id: str | None = None) -> str:
    """``app.kubernetes.io/managed-by=kibertas-async``, narrowed to one run with ``run_id``."""
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
    return f"{selector},{RUN_ID_LABEL}={run_id}" if run_id else selector


def is_ours(obj: KubeObject, run_id: str | None = None) -> bool:
    """Whether ``obj`` carries our managed-by label (and ``run_id``'s label when given)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return False
    return run_id is None or labels.get(RUN_ID_LABEL) == run_id


@dataclass(frozen=True)
class LabelledObject:
    """One object the sweep found: its kind, name, namespace, uid and finalizers when last seen."""

    resource: Resource
    name: str
    namespace: str | None
    uid: str
    finalizers: tuple[str, ...] = ()

    @classmethod
    def from_object(cls, resource: Resource, obj: KubeObject) -> LabelledObject:
        """The object as listed or read."""
        metadata = obj.get("metadata") or {}
        return cls(
            resource=resource,
            name=str(metadata.get("name", "")),
            namespace=metadata.get("namespace") if resource.namespaced else None,
            uid=str(metadata.get("uid", "")),
            finalizers=tuple(str(item) for item in metadata.get("finalizers") or ()),
        )

    def describe(self) -> str:
        """``ConfigMap default/name`` or ``ClusterRole name``."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.resource.kind} {where}"


@dataclass
class SweepResult:
    """What the sweep of one cluster found, deleted and could not delete."""

    cluster: str
    found: list[LabelledObject] = field(default_factory=list)
    """Every object carrying our labels, namespaces last (the order of deletion)."""
    deleted: list[LabelledObject] = field(default_factory=list)
    """Objects deleted and gone by the end of the wait."""
    remaining: list[LabelledObject] = field(default_factory=list)
    """Objects deleted but still there when the wait ended, with their finalizers as last seen."""
    failures: list[tuple[LabelledObject, str]] = field(default_factory=list)
    """Objects whose deletion the API server refused, with its answer."""
    unlisted: list[str] = field(default_factory=list)
    """Kinds (or API groups) that could not be listed, with the reason: not swept."""
    error: str | None = None
    """Why the cluster could not be swept at all (unreachable, discovery refused)."""

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing was left behind."""
        return self.error is None and not self.remaining and not self.failures


async def discover_resources(kube: KubeClient) -> tuple[list[Resource], list[str]]:
    """Every kind the API server serves that can be listed and deleted (no subresources).

    One version per API group: the server's preferred one, so no object is listed twice. A group whose
    discovery fails (an aggregated API that is down, typically) is returned as a problem, not raised.
    """
    problems: list[str] = []
    group_versions: list[str] = [str(version) for version in (await kube.request("GET", "/api")).get("versions", [])]
    for group in (await kube.request("GET", "/apis")).get("groups", []):
        preferred = (group.get("preferredVersion") or {}).get("groupVersion")
        versions = group.get("versions") or []
        chosen = preferred or (versions[0].get("groupVersion") if versions else None)
        if chosen:
            group_versions.append(str(chosen))
    resources: list[Resource] = []
    for group_version in group_versions:
        path = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        try:
            listing = await kube.request("GET", path)
        except KubeApiError as error:
            problems.append(f"API group {group_version}: {error.status} {error.reason or error.message}")
            continue
        for entry in listing.get("resources", []):
            verbs = set(entry.get("verbs") or ())
            if "/" in str(entry.get("name", "")) or not {"list", "delete"} <= verbs:
                continue
            resources.append(resource_from_discovery(group_version, entry))
    return resources, problems


async def find_labelled(
    kube: KubeClient, resources: Sequence[Resource], run_id: str | None = None
) -> tuple[list[LabelledObject], list[str]]:
    """Every object of ``resources`` carrying our labels, namespaces last; and the kinds not listable.

    The label selector narrows the lists; each object's labels are checked again before it is taken.
    An object served by two resources (core and ``events.k8s.io`` Events) is taken once, by uid.
    """
    selector = label_selector(run_id)
    found: dict[str, LabelledObject] = {}
    problems: list[str] = []
    limiter = anyio.CapacityLimiter(_LIST_CONCURRENCY)

    async def list_one(resource: Resource) -> None:
        async with limiter:
            try:
                listed = await kube.list(resource, label_selector=selector)
            except KubeApiError as error:
                problems.append(f"{resource.kind} ({resource.api_version}): {error.status} {error.reason}")
                return
        for obj in listed["items"]:
            if is_ours(obj, run_id):
                item = LabelledObject.from_object(resource, obj)
                found.setdefault(item.uid or f"{resource.path(item.namespace, item.name)}", item)

    async with anyio.create_task_group() as group:
        for resource in resources:
            group.start_soon(list_one, resource)
    return sorted(found.values(), key=_deletion_order), sorted(problems)


async def sweep_cluster(
    kube: KubeClient,
    run_id: str | None = None,
    *,
    dry_run: bool = False,
    wait: float = DEFAULT_WAIT,
    on_deleted: Callable[[LabelledObject], None] = lambda _item: None,
) -> SweepResult:
    """Find and (unless ``dry_run``) delete everything labelled on one cluster; wait up to ``wait``
    seconds for it to go, and report what did not."""
    result = SweepResult(cluster=kube.cluster)
    resources, problems = await discover_resources(kube)
    result.found, listing_problems = await find_labelled(kube, resources, run_id)
    result.unlisted = problems + listing_problems
    if dry_run:
        return result
    requested: list[LabelledObject] = []
    for item in result.found:
        try:
            await kube.delete(item.resource, item.name, item.namespace)
        except KubeApiError as error:
            result.failures.append((item, f"{error.status} {error.reason}: {error.message}"))
            continue
        requested.append(item)
        on_deleted(item)
    result.remaining = await _still_there(kube, requested, wait)
    gone = {item.uid for item in result.remaining}
    result.deleted = [item for item in requested if item.uid not in gone]
    return result


async def sweep_clusters(
    targets: Sequence[ClusterTarget],
    run_id: str | None = None,
    *,
    dry_run: bool = False,
    wait: float = DEFAULT_WAIT,
    connect_timeout: float = 15.0,
    on_deleted: Callable[[str, LabelledObject], None] = lambda _cluster, _item: None,
) -> list[SweepResult]:
    """Sweep every cluster at once, each on its own: one that cannot be reached (or breaks half-way)
    gets its ``error`` and the others are swept all the same. Results are in ``targets`` order."""
    results: dict[str, SweepResult] = {}

    async def sweep(target: ClusterTarget) -> None:
        try:
            async with await connect(target, timeout=connect_timeout) as kube:
                results[target.name] = await sweep_cluster(
                    kube, run_id, dry_run=dry_run, wait=wait, on_deleted=lambda item: on_deleted(target.name, item)
                )
        except Exception as error:  # one cluster's breakage, whatever it is, must not stop the others
            results[target.name] = SweepResult(cluster=target.name, error=_reason(error))

    async with anyio.create_task_group() as group:
        for target in targets:
            group.start_soon(sweep, target)
    return [results[target.name] for target in targets]


def _reason(error: BaseException) -> str:
    """The message of what went wrong; the first error inside a task group's exception group."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return str(error) if isinstance(error, KibertasError) else f"{type(error).__name__}: {error}"


async def _still_there(kube: KubeClient, requested: Sequence[LabelledObject], wait: float) -> list[LabelledObject]:
    """Poll the deleted objects until all are gone or ``wait`` has passed; those left, as last seen."""
    pending = list(requested)
    deadline = anyio.current_time() + wait
    while pending:
        left: list[LabelledObject] = []
        for item in pending:
            current = await kube.get(item.resource, item.name, item.namespace)
            if current is not None and str((current.get("metadata") or {}).get("uid", "")) == item.uid:
                left.append(LabelledObject.from_object(item.resource, current))
        pending = left
        remaining = deadline - anyio.current_time()
        if not pending or remaining <= 0:
            break
        await anyio.sleep(min(_POLL_INTERVAL, remaining))
    return pending


def _deletion_order(item: LabelledObject) -> tuple[int, str, str, str]:
    """Namespaced objects first, then cluster-scoped ones, namespaces last: so every object is deleted
    (and reported) on its own before its namespace's deletion would take it away."""
    rank = 2 if item.resource == NAMESPACES else (0 if item.namespace else 1)
    return (rank, item.resource.kind, item.namespace or "", item.name)


def describe_finalizers(item: LabelledObject) -> str:
    """``finalizers: a, b`` or ``no finalizers``."""
    return f"finalizers: {', '.join(item.finalizers)}" if item.finalizers else "no finalizers"


def summary_lines(result: SweepResult, *, dry_run: bool, wait: float) -> list[str]:
    """What to print for one cluster: each object that would be deleted (dry run), or the count
    deleted and one line per object that could not be, with its finalizers."""
    name = result.cluster
    if result.error is not None:
        return [f"{name}: error: {result.error}"]
    lines = [f"{name}: warning: not swept: {problem}" for problem in result.unlisted]
    if dry_run:
        lines += [f"{name}: would delete {item.describe()}" for item in result.found]
        return lines or [f"{name}: nothing to delete"]
    lines.append(f"{name}: deleted {len(result.deleted)} object(s)" if result.found else f"{name}: nothing to delete")
    lines += [f"{name}: could not delete {item.describe()}: {reason}" for item, reason in result.failures]
    lines += [
        f"{name}: could not delete {item.describe()}: still there after {wait:g}s ({describe_finalizers(item)})"
        for item in result.remaining
    ]
    return lines
