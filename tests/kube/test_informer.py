"""Watches under throttling, streams that end and versions that expire: the informer (and ``wait_for``,
built on it) against a real API server, with faults injected by the fault proxy in front of it."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

from kibertas_async.kube import Change, Informer, KubeClient
from kibertas_async.kube.resources import CONFIGMAPS, NAMESPACES
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.testing import kubectl
from kibertas_async.testing.faultproxy import FaultProxy

RETRY_AFTER = 1.0
CLOCK_SLACK = 0.01
"""Timers may fire this much early relative to the proxy's clock reading (same monotonic clock)."""


def _gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


@pytest.mark.anyio
async def test_wait_for_opens_its_watch_through_two_429s_honouring_retry_after(
    fault_proxy: FaultProxy, proxied_client: KubeClient, sandbox_client: KubeClient, namespace: str
) -> None:
    collection = CONFIGMAPS.path(namespace)
    fault_proxy.refuse_next(2, status=429, retry_after=f"{RETRY_AFTER:g}", path=collection, watch=True)
    found: list[Any] = []

    async def wait() -> None:
        found.append(await proxied_client.wait_for(CONFIGMAPS, "late", namespace, lambda obj: obj is not None))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await fault_proxy.wait_for_requests(3, path=collection, watch=True)  # two refused, one forwarded
            await sandbox_client.create(CONFIGMAPS, {"metadata": {"name": "late"}}, namespace)
    assert found[0]["metadata"]["name"] == "late"
    opens = fault_proxy.seen(path=collection, watch=True)
    assert [(seen.status, seen.refused) for seen in opens] == [(429, True), (429, True), (200, False)]
    assert all(gap >= RETRY_AFTER - CLOCK_SLACK for gap in _gaps([seen.at for seen in opens])), _gaps(
        [seen.at for seen in opens]
    )


@pytest.mark.anyio
async def test_request_waits_the_retry_after_of_each_429(
    fault_proxy: FaultProxy, proxied_client: KubeClient, namespace: str
) -> None:
    collection = CONFIGMAPS.path(namespace)
    fault_proxy.refuse_next(2, status=429, retry_after=f"{RETRY_AFTER:g}", method="GET", path=collection, watch=False)
    with anyio.fail_after(30):
        listed = await proxied_client.list(CONFIGMAPS, namespace)
    assert "kube-root-ca.crt" in {item["metadata"]["name"] for item in listed["items"]}
    attempts = fault_proxy.seen(method="GET", path=collection, watch=False)
    assert [seen.status for seen in attempts] == [429, 429, 200]
    assert all(gap >= RETRY_AFTER - CLOCK_SLACK for gap in _gaps([seen.at for seen in attempts]))


@pytest.mark.anyio
async def test_watch_streams_the_server_ends_are_reopened_after_a_growing_backoff(
    fault_proxy: FaultProxy, proxied_client: KubeClient, sandbox_client: KubeClient, namespace: str
) -> None:
    collection = CONFIGMAPS.path(namespace)
    fault_proxy.end_watches(after_events=0, path=collection)  # every stream ends, normally, before any event
    found: list[Any] = []

    async def wait() -> None:
        found.append(await proxied_client.wait_for(CONFIGMAPS, "late", namespace, lambda obj: obj is not None))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            ended = await fault_proxy.wait_for_requests(5, path=collection, watch=True)
            fault_proxy.clear_faults()
            await sandbox_client.create(CONFIGMAPS, {"metadata": {"name": "late"}}, namespace)
    assert found[0]["metadata"]["name"] == "late"
    assert all(seen.ended_early for seen in ended[:4])
    # Reopened each time from the version listed once (no re-list), after a backoff that doubles from
    # 0.1-0.2 s while streams keep ending empty: lower bounds 0.1, 0.2, 0.4, 0.8 s. A tight loop would
    # reopen within milliseconds, hundreds of times.
    assert fault_proxy.count(path=collection, watch=False) == 1
    assert len({seen.query["resourceVersion"] for seen in ended[:5]}) == 1
    gaps = _gaps([seen.at for seen in ended[:5]])
    assert all(gap >= bound for gap, bound in zip(gaps, (0.1, 0.2, 0.4, 0.8), strict=True)), gaps


@pytest.mark.anyio
async def test_informer_relists_after_410_through_a_throttled_list_and_reports_what_changed(
    sandbox: Sandbox,
    sandbox_cluster: SandboxCluster,
    fault_proxy: FaultProxy,
    proxied_client: KubeClient,
    sandbox_client: KubeClient,
    namespace: str,
) -> None:
    collection = CONFIGMAPS.path(namespace)
    await sandbox_client.create(CONFIGMAPS, {"metadata": {"name": "doomed"}}, namespace)
    informer = Informer(proxied_client, CONFIGMAPS, namespace)
    reported: list[Change] = []
    informer.on_change(reported.extend)
    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            await group.start(informer.run)
            assert set(informer.objects) == {f"{namespace}/doomed", f"{namespace}/kube-root-ca.crt"}
            reported.clear()
            # A write the informer does not watch: etcd's revision moves past the informer's version, so
            # the restarted server's watch cache (which starts at the revision it finds) is newer than it.
            await sandbox_client.patch(
                NAMESPACES, namespace, {"metadata": {"annotations": {"kibertas-async.test/bump": "1"}}}
            )
            # The event loop (and so the informer) is blocked while the API server restarts and the
            # collection changes behind its back. The restarted server's watch cache starts after the
            # informer's version, so resuming from it is 410 Gone; the re-list that follows is refused
            # six times, more than one request retries, as a server under load might.
            sandbox_cluster.restart_apiserver()
            kubectl(sandbox, sandbox_cluster, "-n", namespace, "delete", "configmap", "doomed")
            kubectl(sandbox, sandbox_cluster, "-n", namespace, "create", "configmap", "made-while-away")
            fault_proxy.refuse_next(6, status=503, retry_after="0", method="GET", path=collection, watch=False)
            await informer.wait_until(lambda current: f"{namespace}/made-while-away" in current.objects)
            group.cancel_scope.cancel()
    assert informer.lists == 2
    assert set(informer.objects) == {f"{namespace}/made-while-away", f"{namespace}/kube-root-ca.crt"}
    assert sorted((change.type, change.key) for change in reported) == [
        ("ADDED", f"{namespace}/made-while-away"),
        ("DELETED", f"{namespace}/doomed"),
    ]
    relists = fault_proxy.seen(method="GET", path=collection, watch=False)[1:]
    assert [seen.status for seen in relists] == [503] * 6 + [200]
