"""``ctx.wait_for(..., timeout=, fail=)`` against a real API server: a wait whose time runs out is FAILED
(NG) in its step, with a reason built from the last object the watch saw; one that is satisfied in time
returns that object."""

from __future__ import annotations

import math

import pytest

from kibertas_async import CheckFailed, KubeObject, Outcome
from kibertas_async.checks import CheckContext, CleanupGuard, CleanupStack
from kibertas_async.events import get_logger
from kibertas_async.kube import ClusterTarget, KubeClient
from kibertas_async.kube.resources import CONFIGMAPS
from kibertas_async.options import OptionValues

pytestmark = pytest.mark.anyio


def _context(kube: KubeClient) -> CheckContext:
    return CheckContext(
        run_id="wait-for-timeout",
        check_name="wait-for-timeout",
        cluster=ClusterTarget("sandbox-1"),
        options=OptionValues({}, {}),
        log=get_logger(),
        cleanup=CleanupStack(keep=False, action_timeout=60, guard=CleanupGuard()),
        kube=kube,
        deadline=math.inf,
    )


def _state(obj: KubeObject | None) -> str:
    return "absent" if obj is None else f"state={obj['data']['state']}"


async def test_an_object_that_never_appears_fails_with_its_absence(sandbox_client: KubeClient, namespace: str) -> None:
    ctx = _context(sandbox_client)
    with pytest.raises(CheckFailed) as failed:
        async with ctx.step("wait for config"):
            await ctx.wait_for(
                CONFIGMAPS,
                "never",
                namespace,
                lambda obj: obj is not None,
                progress=_state,
                timeout=1,
                fail="never made",
            )
    assert failed.value.reason == "never made within 1s; last seen: absent"
    assert failed.value.step == "wait for config"
    assert ctx.results[0].outcome is Outcome.FAILED
    assert ctx.results[0].detail == "absent"


async def test_the_reason_is_built_from_the_last_object_seen(sandbox_client: KubeClient, namespace: str) -> None:
    await sandbox_client.create(CONFIGMAPS, {"metadata": {"name": "job"}, "data": {"state": "pending"}}, namespace)
    await sandbox_client.patch(CONFIGMAPS, "job", {"data": {"state": "stuck"}}, namespace)
    ctx = _context(sandbox_client)
    seen: list[KubeObject | None] = []

    async def reason(last: KubeObject | None) -> str:
        seen.append(last)
        # A failure reason may look something up: here, the object as the API has it now.
        now = await sandbox_client.get(CONFIGMAPS, "job", namespace)
        assert now is not None
        return f"job stayed {_state(last)} (now {now['data']['state']})"

    with pytest.raises(CheckFailed) as failed:
        await ctx.wait_for(
            CONFIGMAPS, "job", namespace, lambda obj: _state(obj) == "state=done", timeout=1.5, fail=reason
        )
    assert failed.value.reason == "job stayed state=stuck (now stuck)"
    [last] = seen
    assert last is not None and last["metadata"]["name"] == "job"


async def test_without_fail_the_reason_names_the_object(sandbox_client: KubeClient, namespace: str) -> None:
    ctx = _context(sandbox_client)
    with pytest.raises(CheckFailed) as failed:
        await ctx.wait_for(CONFIGMAPS, "absent", namespace, lambda obj: obj is not None, timeout=1)
    assert failed.value.reason == f"ConfigMap {namespace}/absent did not get there within 1s; last seen: absent"


async def test_a_wait_satisfied_in_time_returns_the_object(sandbox_client: KubeClient, namespace: str) -> None:
    await sandbox_client.create(CONFIGMAPS, {"metadata": {"name": "ready"}, "data": {"state": "done"}}, namespace)
    ctx = _context(sandbox_client)
    found = await ctx.wait_for(
        CONFIGMAPS, "ready", namespace, lambda obj: _state(obj) == "state=done", timeout=60, fail="unused"
    )
    assert found is not None and found["data"] == {"state": "done"}
