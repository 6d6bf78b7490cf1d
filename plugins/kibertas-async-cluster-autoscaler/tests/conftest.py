"""Fixtures of the scale-up checks' tests: the kit's ``check_runner`` runs the real CLI against the sandbox
and ``nothing_left`` proves that nothing a run created remains; here, the sandbox autoscaler must scale
back down too.

The sandbox is shared by the whole session, so every test starts from the same cluster state, checked
and restored by :func:`restore_cluster_state`: kwok's four nodes untainted, uncordoned and Ready, the
sandbox autoscaler's ConfigMap at its start values, Karpenter's NodePool as the add-on made it, every
sandbox process (the autoscaler, Karpenter, kwok, the scheduler) alive, and no node of the autoscaler's
nor any NodeClaim (or its node) of Karpenter's left.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import anyio
import pytest

from kibertas_async.kube import ClusterTarget, Informer, connect
from kibertas_async.kube.resources import NODES
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.testing import kubectl
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner, RunResult
from kibertas_async.testing.waiting import eventually
from kibertas_async_cluster_autoscaler.checks import NODECLAIMS, NODEPOOL_LABEL
from kibertas_async_cluster_autoscaler.sandbox import karpenter
from kibertas_async_cluster_autoscaler.sandbox.config import (
    CONFIGMAP_NAME,
    CONFIGMAP_NAMESPACE,
    GROUP_LABEL,
    AutoscalerConfig,
)

TLS_CLOSE_GRACE = 0.25
NODES_READY_TIMEOUT = 90.0
"""Bound on kwok's nodes becoming Ready again (with the node controller's taints gone) on a busy machine."""
NODE_CONTROLLER_TAINTS = "node.kubernetes.io/"
"""Prefix of the taints the node lifecycle controller manages itself (not-ready, unreachable, ...)."""
SCALED_BACK_TIMEOUT = 120.0
"""Generous bound on the sandbox autoscaler's scale-down (its delay is 5 s), and on Karpenter terminating
the NodeClaims deleted here, on a busy machine."""
KARPENTER_READY_TIMEOUT = 120.0
"""Bound on a (re)started Karpenter answering ``/readyz`` and marking its NodePool Ready."""


def wait_scaled_back(sandbox: Sandbox) -> None:
    """On every cluster: delete Karpenter's NodeClaims (Karpenter drains and removes their nodes, as on
    ``kubectl delete nodeclaim``; quicker than waiting for its consolidation), then watch until every node
    the sandbox autoscaler or Karpenter added and every NodeClaim is gone."""
    for cluster in sandbox.clusters:
        kubectl(sandbox, cluster, "delete", "nodeclaims", "--all", "--wait=false")

    async def one_cluster(name: str) -> None:
        async with await connect(ClusterTarget(name, context=name, kubeconfig=str(sandbox.kubeconfig))) as kube:
            added_nodes = Informer(kube, NODES, label_selector=GROUP_LABEL)
            karpenter_nodes = Informer(kube, NODES, label_selector=NODEPOOL_LABEL)
            claims = Informer(kube, NODECLAIMS)
            async with anyio.create_task_group() as group:
                for informer in (added_nodes, karpenter_nodes, claims):
                    await group.start(informer.run)
                with anyio.fail_after(SCALED_BACK_TIMEOUT):
                    # One after the other is enough: each is only waited for to be empty, and stays empty.
                    for informer in (added_nodes, karpenter_nodes, claims):
                        await informer.wait_until(lambda informer: not informer.objects)
                group.cancel_scope.cancel()
        # A watch stopped mid-stream closes its TLS connection gracefully, which takes a few loop turns
        # after the client is closed; an event loop that ends at once leaves the socket to the garbage
        # collector (ResourceWarning). aiohttp's documented remedy for short-lived loops: a short grace.
        await anyio.sleep(TLS_CLOSE_GRACE)

    async def every_cluster() -> None:
        async with anyio.create_task_group() as group:
            for cluster in sandbox.clusters:
                group.start_soon(one_cluster, cluster.name)

    anyio.run(every_cluster)


def assert_processes_alive(sandbox: Sandbox) -> None:
    """Every process of every cluster runs: a dead sandbox autoscaler (or kwok, or scheduler) fails here,
    named with its log's tail, instead of as a scale-up that never comes."""
    for cluster in sandbox.clusters:
        for component, process in cluster.processes.items():
            assert process.is_alive(), (
                f"{cluster.name}: {component} is not running; its log ends:\n{process.log_tail()}"
            )


def restore_nodes(sandbox: Sandbox) -> list[str]:
    """kwok's own nodes back to how the kwok add-on made them, on every cluster: taints a test added
    removed, uncordoned; then wait until each is Ready with no taint at all. Returns what it restored."""
    restored = []
    for cluster in sandbox.clusters:
        for node in _kwok_nodes(sandbox, cluster.name):
            name, spec = node["metadata"]["name"], node.get("spec", {})
            taints = spec.get("taints") or []
            kept = [t for t in taints if str(t.get("key", "")).startswith(NODE_CONTROLLER_TAINTS)]
            if len(kept) == len(taints) and not spec.get("unschedulable"):
                continue
            restored.append(f"{cluster.name}/{name}: taints {taints}, unschedulable={spec.get('unschedulable')}")
            patch = json.dumps({"spec": {"taints": kept or None, "unschedulable": None}})
            kubectl(sandbox, cluster, "patch", "node", name, "--type=merge", "-p", patch)
    for cluster in sandbox.clusters:
        eventually(
            f"{cluster.name}: kwok nodes back to Ready and untainted (the unsettled ones are shown)",
            functools.partial(_unsettled_nodes, sandbox, cluster.name),
            lambda unsettled: not unsettled,
            timeout=NODES_READY_TIMEOUT,
            every=0.5,
        )
    return restored


def _unsettled_nodes(sandbox: Sandbox, cluster: str) -> list[str]:
    return [
        f"{node['metadata']['name']}: taints {node.get('spec', {}).get('taints')}"
        for node in _kwok_nodes(sandbox, cluster)
        if not _settled(node)
    ]


def restore_autoscaler_settings(sandbox: Sandbox) -> None:
    """The sandbox autoscalers' ConfigMap holds exactly its start values again (keys a test added removed)."""
    start = AutoscalerConfig().configmap_data()
    for cluster in sandbox.clusters:
        path = f"/api/v1/namespaces/{CONFIGMAP_NAMESPACE}/configmaps/{CONFIGMAP_NAME}"
        current: dict[str, str] = cluster.api().get(path).get("data") or {}
        if current != start:
            _patch_settings(sandbox, cluster.name, {**dict.fromkeys(current), **start})


def restore_nodepool(sandbox: Sandbox) -> list[str]:
    """Karpenter's NodePool ``default`` back to the add-on's spec on every cluster (a test changed its
    limits, say). Returns what it restored."""
    restored = []
    wanted = karpenter.nodepool_manifest()["spec"]
    for cluster in sandbox.clusters:
        pool = json.loads(kubectl(sandbox, cluster, "get", "nodepool", karpenter.NODEPOOL, "-o", "json").stdout)
        if pool["spec"].get("limits") != wanted["limits"]:
            restored.append(f"{cluster.name}: NodePool limits {pool['spec'].get('limits')}")
            patch = json.dumps({"spec": {"limits": wanted["limits"]}})
            kubectl(sandbox, cluster, "patch", "nodepool", karpenter.NODEPOOL, "--type=merge", "-p", patch)
    return restored


def wait_karpenter_ready(sandbox: Sandbox, cluster: SandboxCluster) -> None:
    """Until the cluster's Karpenter answers ``/readyz`` and its NodePool is Ready (after a restart)."""
    argv = cluster.processes[karpenter.PROCESS_NAME].spec.argv
    port = next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--health-probe-port="))
    try:
        eventually(
            f"{cluster.name}: Karpenter ready again",
            lambda: _answers(f"http://127.0.0.1:{port}/readyz") and _nodepool_ready(sandbox, cluster),
            timeout=KARPENTER_READY_TIMEOUT,
            every=0.5,
        )
    except AssertionError as error:
        log = cluster.processes[karpenter.PROCESS_NAME].log_tail()
        raise AssertionError(f"{error}; its log ends:\n{log}") from None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _nodepool_ready(sandbox: Sandbox, cluster: SandboxCluster) -> bool:
    found = kubectl(sandbox, cluster, "get", "nodepool", karpenter.NODEPOOL, "-o", "json", check=False)
    if found.returncode != 0:
        return False
    conditions = json.loads(found.stdout).get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def restore_cluster_state(sandbox: Sandbox) -> list[str]:
    """Everything a scale-up test may change, back to the start state (see the module docstring)."""
    assert_processes_alive(sandbox)
    restore_autoscaler_settings(sandbox)
    restored = restore_nodes(sandbox) + restore_nodepool(sandbox)
    wait_scaled_back(sandbox)
    return restored


def _kwok_nodes(sandbox: Sandbox, cluster: str) -> list[dict[str, Any]]:
    """The nodes the kwok add-on created (``type=kwok`` without the sandbox autoscaler's group label)."""
    nodes = json.loads(
        kubectl(sandbox, cluster, "get", "nodes", "-l", f"type=kwok,!{GROUP_LABEL}", "-o", "json").stdout
    )
    items: list[dict[str, Any]] = nodes["items"]
    return items


def _settled(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not node.get("spec", {}).get("taints") and not node.get("spec", {}).get("unschedulable")


@contextlib.contextmanager
def autoscaler_settings(sandbox: Sandbox, **data: str) -> Iterator[None]:
    """Within the block the sandbox autoscalers' ConfigMap has ``data`` (e.g. ``enabled="false"``);
    afterwards its previous values are back."""
    settings = {key.replace("_", "-"): value for key, value in data.items()}
    previous: dict[str, dict[str, str | None]] = {}
    for cluster in sandbox.clusters:
        path = f"/api/v1/namespaces/{CONFIGMAP_NAMESPACE}/configmaps/{CONFIGMAP_NAME}"
        before = cluster.api().get(path).get("data") or {}
        # None removes, in a merge patch, the keys the block added.
        previous[cluster.name] = {key: before.get(key) for key in settings}
        _patch_settings(sandbox, cluster.name, dict(settings))
    try:
        yield
    finally:
        for name, values in previous.items():
            _patch_settings(sandbox, name, values)


def _patch_settings(sandbox: Sandbox, cluster: str, data: dict[str, str | None]) -> None:
    patch = json.dumps({"data": data})
    kubectl(
        sandbox, cluster, "-n", CONFIGMAP_NAMESPACE, "patch", "configmap", CONFIGMAP_NAME, "--type=merge", "-p", patch
    )


RunChecks = Callable[..., RunResult]
AutoscalerSettings = Callable[..., contextlib.AbstractContextManager[None]]


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp (under the Kubernetes client) runs on asyncio only."""
    return "asyncio"


@pytest.fixture
def clean_sandbox(sandbox: Sandbox, nothing_left: NothingLeft) -> Iterator[Sandbox]:
    """The sandbox in its start state (:func:`restore_cluster_state`, whatever earlier tests of the session
    left); after the test, checked: nothing of ours left, and the start state restored again."""
    restored = restore_cluster_state(sandbox)
    if restored:
        print(f"restored before the test: {'; '.join(restored)}")  # shown with the test's output on failure
    yield sandbox
    nothing_left()
    restore_cluster_state(sandbox)


@pytest.fixture
def run(clean_sandbox: Sandbox, check_runner: CheckRunner) -> RunChecks:
    """``run("cluster-autoscaler", "--flag", ..., clusters=(...))``: :meth:`CheckRunner.run` on the clean
    sandbox (every cluster unless told otherwise)."""

    def run_in_sandbox(*args: str, clusters: Sequence[str] | None = None) -> RunResult:
        # Bounded well below the per-test timeout, so a scale-up that never comes fails with a report.
        bounds = () if "--scale-up-timeout" in args else ("--scale-up-timeout", "90s")
        return check_runner.run(*args, *bounds, clusters=clusters)

    return run_in_sandbox


@pytest.fixture
def sandbox_autoscaler(clean_sandbox: Sandbox) -> AutoscalerSettings:
    """``with sandbox_autoscaler(enabled="false"):`` — :func:`autoscaler_settings` on every cluster."""

    def settings(**data: str) -> contextlib.AbstractContextManager[None]:
        return autoscaler_settings(clean_sandbox, **data)

    return settings


@pytest.fixture
def tainted_spot_node(clean_sandbox: Sandbox) -> Iterator[str]:
    """``kwok-node-4`` (SPOT) on every cluster tainted ``dedicated=spot:NoSchedule`` during the test."""
    taint = "dedicated=spot:NoSchedule"
    for cluster in clean_sandbox.clusters:
        kubectl(clean_sandbox, cluster, "taint", "nodes", "kwok-node-4", taint)
    try:
        yield taint
    finally:
        for cluster in clean_sandbox.clusters:
            kubectl(clean_sandbox, cluster, "taint", "nodes", "kwok-node-4", f"{taint}-")


@pytest.fixture
def scaled_back(clean_sandbox: Sandbox) -> Callable[[], None]:
    """Call it between two runs of a test: returns once the first run's added nodes are gone."""
    return functools.partial(wait_scaled_back, clean_sandbox)


@pytest.fixture
def without_nodepool_api(clean_sandbox: Sandbox) -> Iterator[None]:
    """The ``nodepools.karpenter.sh`` CRD removed from every cluster during the test (Karpenter stopped
    meanwhile: its controllers watch NodePools), then reinstalled from Karpenter's module with the NodePool
    as the add-on makes it, and Karpenter started again and ready."""
    [crd] = [crd for crd in karpenter.load_crds() if crd["metadata"]["name"] == "nodepools.karpenter.sh"]
    with contextlib.ExitStack() as stopped:
        for cluster in clean_sandbox.clusters:
            stopped.enter_context(cluster.fault(karpenter.PROCESS_NAME, "stop"))
        for cluster in clean_sandbox.clusters:
            kubectl(clean_sandbox, cluster, "delete", "customresourcedefinition", crd["metadata"]["name"], "--wait")
        try:
            yield
        finally:
            for cluster in clean_sandbox.clusters:
                kubectl(clean_sandbox, cluster, "create", "-f", "-", input=json.dumps(crd))
                kubectl(clean_sandbox, cluster, "wait", "--for=condition=Established", f"crd/{crd['metadata']['name']}")
                # A new CRD's path is served a moment after Established.
                deadline = time.monotonic() + 30
                while (
                    kubectl(
                        clean_sandbox,
                        cluster,
                        "create",
                        "-f",
                        "-",
                        input=json.dumps(karpenter.nodepool_manifest()),
                        check=False,
                    ).returncode
                    != 0
                ):
                    assert time.monotonic() < deadline, f"{cluster.name}: NodePool not created again"
                    time.sleep(0.5)
    for cluster in clean_sandbox.clusters:
        wait_karpenter_ready(clean_sandbox, cluster)


@pytest.fixture
def nodepool_limited(clean_sandbox: Sandbox) -> Iterator[str]:
    """Karpenter's NodePool on every cluster limited to 1 CPU during the test: no instance type fits (the
    smallest has 2). Restored afterwards (:func:`restore_nodepool`)."""
    patch = json.dumps({"spec": {"limits": {"cpu": "1"}}})
    for cluster in clean_sandbox.clusters:
        kubectl(clean_sandbox, cluster, "patch", "nodepool", karpenter.NODEPOOL, "--type=merge", "-p", patch)
    try:
        yield "cpu=1"
    finally:
        restore_nodepool(clean_sandbox)


@pytest.fixture
def karpenter_stopped(clean_sandbox: Sandbox) -> Iterator[None]:
    """The Karpenter process of every cluster stopped during the test, then started again and ready."""
    with contextlib.ExitStack() as stopped:
        for cluster in clean_sandbox.clusters:
            stopped.enter_context(cluster.fault(karpenter.PROCESS_NAME, "stop"))
        yield
    for cluster in clean_sandbox.clusters:
        wait_karpenter_ready(clean_sandbox, cluster)
