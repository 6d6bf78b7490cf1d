"""The sandbox ingress controller keeps serving when the API server ends its watch streams, without a tight loop.

The controller runs in-process against ``sandbox-1`` through a :class:`FaultProxy`, with a class of its own
so the sandbox's real stand-in (class ``alb``) and this one never act on the same Ingress.
"""

from __future__ import annotations

import itertools

import anyio
import pytest

from kibertas_async.kube import KubeClient, KubeObject
from kibertas_async.kube.resources import INGRESSES
from kibertas_async.testing.faultproxy import FaultProxy
from kibertas_async_ingress.sandbox_controller import Controller, IngressTable

INGRESS_CLASS = "watch-test"
ADDRESS = "127.77.250.1"
"""Only published into the Ingress's status: nothing serves on it."""


def _published(ingress: KubeObject | None) -> bool:
    loadbalancer = ((ingress or {}).get("status") or {}).get("loadBalancer") or {}
    return bool(loadbalancer.get("ingress") == [{"ip": ADDRESS}])


@pytest.mark.anyio
async def test_streams_the_server_ends_are_reopened_after_a_growing_backoff_and_it_keeps_serving(
    fault_proxy: FaultProxy, proxied_client: KubeClient, sandbox_client: KubeClient, sandbox_namespace: str
) -> None:
    collection = INGRESSES.path()
    fault_proxy.end_watches(after_events=0, path=collection)  # every stream ends, normally, before any event
    controller = Controller(proxied_client, IngressTable(INGRESS_CLASS), ADDRESS)
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
            ended = await fault_proxy.wait_for_requests(5, path=collection, watch=True)
            fault_proxy.clear_faults()
            await sandbox_client.create(INGRESSES, ingress, sandbox_namespace)
            await sandbox_client.wait_for(INGRESSES, "web", sandbox_namespace, _published)
            group.cancel_scope.cancel()
    assert controller.table.route("web.example.test", "/") is not None
    assert all(seen.ended_early for seen in ended[:4])
    # Reopened from the version listed once (the old loop re-listed each time), after a backoff that
    # doubles from 0.1-0.2 s: lower bounds 0.1, 0.2, 0.4, 0.8 s. A tight loop reopens within milliseconds.
    assert fault_proxy.count(path=collection, watch=False) == 1
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(ended[:5])]
    assert all(gap >= bound for gap, bound in zip(gaps, (0.1, 0.2, 0.4, 0.8), strict=True)), gaps


def _path(prefix: str, service: str) -> dict[str, object]:
    return {"path": prefix, "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}
