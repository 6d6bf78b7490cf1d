"""Fault switches: an API server stopped, restarted (watch resumption) or unreachable."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.rest import ApiException

from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.runner import SandboxCluster
from kibertas_async.testing import api_client
from tests.sandbox.manifests import body

WAIT_LIMIT = 90.0


async def watch_until_added(core: Any, namespace: str, name: str, resource_version: str) -> list[tuple[str, str]]:
    """Watch ConfigMaps from ``resource_version`` until ``name`` shows up, resuming like an informer.

    A restarted API server rebuilds its watch cache from the current etcd revision, so a watch from an
    older resourceVersion may get 410 Expired: then relist and watch on from the list's version.
    """
    seen: list[tuple[str, str]] = []
    with anyio.fail_after(WAIT_LIMIT):
        while True:
            events = watch.Watch()
            try:
                async for event in events.stream(
                    core.list_namespaced_config_map, namespace, resource_version=resource_version, timeout_seconds=60
                ):
                    seen.append((event["type"], event["object"].metadata.name))
                    if seen[-1] == ("ADDED", name):
                        return seen
            except ApiException as error:
                if error.status != 410:
                    raise
                listing = await core.list_namespaced_config_map(namespace)
                seen.extend(("LISTED", item.metadata.name) for item in listing.items)
                if ("LISTED", name) in seen:
                    return seen
                resource_version = listing.metadata.resource_version
            finally:
                events.stop()


@pytest.mark.anyio
async def test_watch_resumes_after_an_apiserver_restart(sandbox_cluster: SandboxCluster, namespace: str) -> None:
    async with api_client(sandbox_cluster) as api:
        before = await client.CoreV1Api(api).create_namespaced_config_map(
            namespace, body({"metadata": {"name": "before-restart"}})
        )
    old_pid, port = sandbox_cluster.apiserver.pid, sandbox_cluster.port

    sandbox_cluster.restart_apiserver()

    assert sandbox_cluster.apiserver.pid != old_pid
    assert sandbox_cluster.port == port
    async with api_client(sandbox_cluster) as api:
        core = client.CoreV1Api(api)
        survivor = await core.read_namespaced_config_map("before-restart", namespace)
        assert survivor.metadata.uid == before.metadata.uid  # etcd kept the data
        await core.create_namespaced_config_map(namespace, body({"metadata": {"name": "after-restart"}}))
        seen = await watch_until_added(core, namespace, "after-restart", before.metadata.resource_version)
    assert ("ADDED", "before-restart") not in seen  # the watch continued after its resourceVersion


def test_stopped_apiserver_refuses_connections_then_comes_back(sandbox_cluster: SandboxCluster) -> None:
    api = sandbox_cluster.api()
    with sandbox_cluster.apiserver_stopped():
        assert not sandbox_cluster.apiserver.is_alive()
        with pytest.raises(ApiError, match="refused") as raised:
            api.get("/version", timeout=5)
        assert raised.value.status == 0
    assert api.get("/version")["gitVersion"] == "v1.36.3"


def test_unreachable_cluster_accepts_connections_but_never_answers(sandbox_cluster: SandboxCluster) -> None:
    api = sandbox_cluster.api()
    with sandbox_cluster.unreachable():
        assert sandbox_cluster.apiserver.is_alive()
        with pytest.raises(ApiError, match="timed out") as raised:
            api.get("/version", timeout=1)
        assert raised.value.status == 0
    assert api.get("/version")["gitVersion"] == "v1.36.3"
