"""The client's request accounting against a real API server: every request counted once, by verb, per view.

The API-request benchmark (``benchmarks/checks/api_requests.py``) reads these counts from the
``check.finished`` event to compare each check with the fewest requests it could make.
"""

from __future__ import annotations

import anyio
import pytest

from kibertas_async.kube import KubeClient, KubeObject
from kibertas_async.kube.resources import CONFIGMAPS


@pytest.mark.anyio
async def test_every_request_is_counted_once_by_verb(sandbox_client: KubeClient, namespace: str) -> None:
    kube = sandbox_client.view()
    await kube.create(CONFIGMAPS, {"metadata": {"name": "counted"}, "data": {"round": "0"}}, namespace)
    assert await kube.get(CONFIGMAPS, "counted", namespace) is not None
    assert await kube.get(CONFIGMAPS, "absent", namespace) is None  # a 404 is a request too
    await kube.list(CONFIGMAPS, namespace)
    await kube.patch(CONFIGMAPS, "counted", {"data": {"round": "1"}}, namespace)
    # A wait is an informer: one list, then one watch (the list already shows round 1: no watch needed).
    await kube.wait_for(CONFIGMAPS, "counted", namespace, lambda obj: obj is not None)
    assert await kube.delete(CONFIGMAPS, "counted", namespace)

    assert dict(kube.requests_by_verb) == {"POST": 1, "GET": 2, "LIST": 2, "PATCH": 1, "DELETE": 1}
    assert kube.requests_made == sum(kube.requests_by_verb.values()) == 7


@pytest.mark.anyio
async def test_a_wait_that_needs_the_stream_counts_one_list_and_one_watch(
    sandbox_client: KubeClient, namespace: str
) -> None:
    kube = sandbox_client.view()
    await sandbox_client.create(CONFIGMAPS, {"metadata": {"name": "watched"}, "data": {"round": "0"}}, namespace)
    listed = anyio.Event()

    def changed(obj: KubeObject | None) -> bool:
        listed.set()  # asked first after the list: the change below can only come through the watch
        return obj is not None and obj["data"]["round"] == "1"

    async def change_it_once_listed() -> None:
        await listed.wait()
        await sandbox_client.patch(CONFIGMAPS, "watched", {"data": {"round": "1"}}, namespace)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(change_it_once_listed)
        with anyio.fail_after(30):
            found = await kube.wait_for(CONFIGMAPS, "watched", namespace, changed)
    assert found is not None and found["data"]["round"] == "1"
    assert dict(kube.requests_by_verb) == {"LIST": 1, "WATCH": 1}
    # Each view counts its own requests: the patch went through the other client.
    assert sandbox_client.requests_by_verb["PATCH"] == 1 and kube.requests_by_verb["PATCH"] == 0
