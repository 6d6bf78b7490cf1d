"""The sandbox ingress controller keeps serving when the API server ends its watch streams, without a tight loop.

The controller runs in-process against ``sandbox-1`` through a :class:`FaultProxy`, with a class of its own
so the sandbox's real stand-in (class ``alb``) and this one never act on the same Ingress.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from kibertas_async.kube import ClusterTarget, KubeClient, KubeObject, connect
from kibertas_async.kube.resources import INGRESSES, NAMESPACES
from kibertas_async.sandbox.runner import SandboxCluster
from kibertas_async.testing.faultproxy import FaultProxy
from kibertas_async_ingress.sandbox_controller import Controller, IngressTable

INGRESS_CLASS = "watch-test"
ADDRESS = "127.77.250.1"
"""Only published into the Ingress's status: nothing serves on it."""


@pytest.fixture
async def direct(sandbox_cluster: SandboxCluster) -> AsyncIterator[KubeClient]:
    """A client straight to the API server (the test's own hands, not what is under test)."""
    target = ClusterTarget(
        sandbox_cluster.name, context=sandbox_cluster.context, kubeconfig=str(sandbox_cluster.kubeconfig)
    )
    async with await connect(target) as kube:
        yield kube


@pytest.fixture
async def namespace(direct: KubeClient) -> AsyncIterator[str]:
    created = await direct.create(NAMESPACES, {"metadata": {"generateName": "controller-watch-test-"}})
    name = str(created["metadata"]["name"])
    yield name
    await direct.delete(NAMESPACES, name)


@pytest.fixture
async def proxy(sandbox_cluster: SandboxCluster) -> AsyncIterator[FaultProxy]:
    async with FaultProxy.for_cluster(sandbox_cluster) as started:
        yield started


@pytest.fixture
async def proxied(proxy: FaultProxy, tmp_path: Path) -> AsyncIterator[KubeClient]:
    """The controller's client: it reaches the API server through the fault proxy."""
    async with await connect(proxy.write_kubeconfig(tmp_path / "proxy-kubeconfig.json")) as kube:
        yield kube


def _published(ingress: KubeObject | None) -> bool:
    loadbalancer = ((ingress or {}).get("status") or {}).get("loadBalancer") or {}
    return bool(loadbalancer.get("ingress") == [{"ip": ADDRESS}])


@pytest.mark.anyio
async def test_streams_the_server_ends_are_reopened_after_a_growing_backoff_and_it_keeps_serving(
    proxy: FaultProxy, proxied: KubeClient, direct: KubeClient, namespace: str
) -> None:
    collection = INGRESSES.path()
    proxy.end_watches(after_events=0, path=collection)  # every stream ends, normally, before any event
    controller = Controller(proxied, IngressTable(INGRESS_CLASS), ADDRESS)
    ingress = {
        "metadata": {"name": "web"},
        "spec": {
            "ingressClassName": INGRESS_CLASS,
            "rules": [{"host": "web.example.test", "http": {"paths": [_path("/", "web")]}}],
        },
    }
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(controller.sync_forever)
            ended = await proxy.wait_for_requests(5, path=collection, watch=True)
            proxy.clear_faults()
            await direct.create(INGRESSES, ingress, namespace)
            await direct.wait_for(INGRESSES, "web", namespace, _published)
            group.cancel_scope.cancel()
    assert controller.table.route("web.example.test", "/") is not None
    assert all(seen.ended_early for seen in ended[:4])
    # Reopened from the version listed once (the old loop re-listed each time), after a backoff that
    # doubles from 0.1-0.2 s: lower bounds 0.1, 0.2, 0.4, 0.8 s. A tight loop reopens within milliseconds.
    assert proxy.count(path=collection, watch=False) == 1
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(ended[:5])]
    assert all(gap >= bound for gap, bound in zip(gaps, (0.1, 0.2, 0.4, 0.8), strict=True)), gaps


def _path(prefix: str, service: str) -> dict[str, object]:
    return {"path": prefix, "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}
