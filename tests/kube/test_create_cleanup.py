"""``ctx.create`` and ``ctx.namespace`` register the deletion before the POST, against a real API server:
an object whose creation answer never arrived (connection lost, deadline mid-request) is still cleaned
up; an object we did not create (a name already taken, a same-named object made later by someone else)
is never deleted."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from kibertas_async.checks import CheckContext, CleanupGuard, CleanupStack
from kibertas_async.events import get_logger
from kibertas_async.kube import ClusterTarget, KubeApiError, KubeClient, KubeObject, KubeUnavailable
from kibertas_async.kube.resources import CONFIGMAPS, NAMESPACES, Resource
from kibertas_async.options import OptionValues

pytestmark = pytest.mark.anyio


def _context(kube: KubeClient, cleanup: CleanupStack, run_id: str = "create-cleanup") -> CheckContext:
    return CheckContext(
        run_id=run_id,
        check_name="create-cleanup",
        cluster=ClusterTarget("sandbox-1"),
        options=OptionValues({}, {}),
        log=get_logger(),
        cleanup=cleanup,
        kube=kube,
        deadline=math.inf,
    )


def _stack() -> CleanupStack:
    return CleanupStack(keep=False, action_timeout=60, guard=CleanupGuard())


def _losing_the_answer(kube: KubeClient, then: Callable[[], Awaitable[None]]) -> None:
    """The POST reaches the API server (the object is created), then ``then`` happens before its answer
    is read: the connection drops, or a deadline fires while we wait."""
    real_create = kube.create

    async def create(resource: Resource, manifest: KubeObject, namespace: str | None = None) -> KubeObject:
        await real_create(resource, manifest, namespace)
        await then()
        raise AssertionError("unreachable")

    kube.create = create  # type: ignore[method-assign]


async def _connection_reset() -> None:
    raise KubeUnavailable("POST: ServerDisconnectedError: the connection closed before the answer")


@pytest.mark.parametrize("naming", ["name", "generateName"])
async def test_a_lost_answer_is_recovered_without_a_second_object_and_cleaned_up(
    sandbox_client: KubeClient, namespace: str, naming: str
) -> None:
    cleanup = _stack()
    ctx = _context(sandbox_client, cleanup)
    _losing_the_answer(sandbox_client, _connection_reset)
    manifest: KubeObject = {"metadata": {naming: "lost-answer"}, "data": {"k": "v"}}
    created = await ctx.create(CONFIGMAPS, manifest, namespace)
    made = (await sandbox_client.list(CONFIGMAPS, namespace, label_selector="kibertas-async/run-id=create-cleanup"))[
        "items"
    ]
    assert [obj["metadata"]["uid"] for obj in made] == [created["metadata"]["uid"]], "one object, found again"
    results = await cleanup.run()
    assert [r.status for r in results] == ["done"]
    assert (await sandbox_client.list(CONFIGMAPS, namespace, label_selector="kibertas-async/run-id=create-cleanup"))[
        "items"
    ] == []


async def test_object_created_while_a_deadline_cancelled_the_request_is_still_deleted(
    sandbox_client: KubeClient, namespace: str
) -> None:
    cleanup = _stack()
    ctx = _context(sandbox_client, cleanup)
    _losing_the_answer(sandbox_client, anyio.sleep_forever)
    with anyio.move_on_after(1) as deadline:
        await ctx.create(CONFIGMAPS, {"metadata": {"generateName": "cancelled-"}, "data": {"k": "v"}}, namespace)
    assert deadline.cancelled_caught
    made = (await sandbox_client.list(CONFIGMAPS, namespace, label_selector="kibertas-async/run-id=create-cleanup"))[
        "items"
    ]
    assert len(made) == 1, "the POST did create it, under a generated name"
    await cleanup.run()
    assert (await sandbox_client.list(CONFIGMAPS, namespace, label_selector="kibertas-async/run-id=create-cleanup"))[
        "items"
    ] == []


async def test_a_namespace_whose_answer_was_lost_is_recovered_and_cleaned_up(sandbox_client: KubeClient) -> None:
    cleanup = _stack()
    ctx = _context(sandbox_client, cleanup, run_id="lost-namespace")
    _losing_the_answer(sandbox_client, _connection_reset)
    name = await ctx.namespace("lost")
    selector = "kibertas-async/run-id=lost-namespace"
    assert [
        ns["metadata"]["name"] for ns in (await sandbox_client.list(NAMESPACES, label_selector=selector))["items"]
    ] == [name]
    await cleanup.run()
    assert (await sandbox_client.list(NAMESPACES, label_selector=selector))["items"] == [], (
        "cleanup waits until it is gone"
    )


async def test_a_name_already_taken_is_refused_and_the_other_object_survives(
    sandbox_client: KubeClient, namespace: str
) -> None:
    await sandbox_client.create(
        CONFIGMAPS, {"metadata": {"name": "taken"}, "data": {"owner": "someone else"}}, namespace
    )
    cleanup = _stack()
    ctx = _context(sandbox_client, cleanup)
    with pytest.raises(KubeApiError) as refused:
        await ctx.create(CONFIGMAPS, {"metadata": {"name": "taken"}, "data": {"k": "v"}}, namespace)
    assert refused.value.status == 409
    assert len(cleanup) == 0, "nothing was created, so nothing is to be deleted"
    await cleanup.run()
    survivor: Any = await sandbox_client.get(CONFIGMAPS, "taken", namespace)
    assert survivor["data"] == {"owner": "someone else"}


async def test_a_same_named_object_made_later_by_someone_else_is_not_deleted(
    sandbox_client: KubeClient, namespace: str
) -> None:
    cleanup = _stack()
    ctx = _context(sandbox_client, cleanup)
    await ctx.create(CONFIGMAPS, {"metadata": {"name": "reused"}, "data": {"k": "v"}}, namespace)
    await sandbox_client.delete(CONFIGMAPS, "reused", namespace)
    await sandbox_client.wait_for(CONFIGMAPS, "reused", namespace, lambda obj: obj is None)
    await sandbox_client.create(
        CONFIGMAPS, {"metadata": {"name": "reused"}, "data": {"owner": "someone else"}}, namespace
    )
    results = await cleanup.run()
    assert results[0].status == "done"
    survivor: Any = await sandbox_client.get(CONFIGMAPS, "reused", namespace)
    assert survivor["data"] == {"owner": "someone else"}, "the uid precondition protects the new object"
