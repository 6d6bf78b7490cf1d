"""429 and 5xx without a cluster: the stand-in in this process, its scripted faults, the real client.

The stand-in answers a scripted fault before it looks at the cluster, so no cluster is needed here; the
sandbox tests (``test_datadog_sandbox.py``) prove the same end to end, success after the faults included.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, cast

import pytest

from kibertas_async.errors import StepTimeout
from kibertas_async.results import Outcome
from kibertas_async_datadog.check import STEP_WAIT_FOR_METRICS
from kibertas_async_datadog.metrics import DatadogUnavailable, MetricsClient, asked_wait
from kibertas_async_datadog.standin import RATE_LIMIT_NAME, DatadogStandin

API_KEY, APP_KEY = "standin-api-key", "standin-app-key"
NOW = 1_800_000_000.0


class Standin:
    """The stand-in's application served on a free loopback port, and its state."""

    def __init__(self, state: DatadogStandin, url: str) -> None:
        self.state = state
        self.url = url

    async def fault(self, **document: object) -> tuple[int, dict[str, Any]]:
        """``POST /_standin/faults`` with ``document``; the status and answer."""
        import aiohttp

        async with aiohttp.ClientSession() as session, session.post(f"{self.url}/_standin/faults", json=document) as r:
            return r.status, await r.json()

    async def query_error(self) -> DatadogUnavailable:
        """What one query through the real client raised."""
        async with MetricsClient(self.url, API_KEY, APP_KEY) as client:
            with pytest.raises(DatadogUnavailable) as raised:
                await client.query(0, 60, "avg:m{*}")
        return raised.value


@pytest.fixture
async def standin() -> AsyncIterator[Standin]:
    from aiohttp import web

    # No cluster behind it: these tests only ever get scripted faults.
    state = DatadogStandin("sandbox-1", cast(Any, None), API_KEY, APP_KEY)
    runner = web.AppRunner(state.application(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield Standin(state, f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


def test_retry_after_is_seconds_or_a_date() -> None:
    assert asked_wait(503, {"retry-after": "2"}) == 2.0
    later = format_datetime(datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=30), usegmt=True)
    assert asked_wait(429, {"retry-after": later}, clock=lambda: NOW) == pytest.approx(30.0)
    assert asked_wait(429, {"retry-after": "-5"}) == 0.0


def test_ratelimit_reset_counts_on_a_429_only_and_retry_after_wins() -> None:
    assert asked_wait(429, {"x-ratelimit-reset": "7"}) == 7.0
    assert asked_wait(429, {"x-ratelimit-reset": "7", "retry-after": "3"}) == 3.0
    assert asked_wait(503, {"x-ratelimit-reset": "7"}) is None


@pytest.mark.parametrize("headers", [{}, {"retry-after": "soon"}, {"retry-after": "inf"}, {"x-ratelimit-reset": "nan"}])
def test_no_usable_wait_is_none(headers: dict[str, str]) -> None:
    assert asked_wait(429, headers) is None


@pytest.mark.anyio
async def test_a_429_through_the_client_carries_the_asked_wait_and_the_limit(standin: Standin) -> None:
    assert await standin.fault(status=429, count=1, retry_after=2, ratelimit_reset=9) == (200, {"pending": 1})
    error = await standin.query_error()
    assert (error.status, error.retry_after, error.limit_name) == (429, 2.0, RATE_LIMIT_NAME)
    assert error.explain() == f"rate limited by Datadog (retry after 2s), limit '{RATE_LIMIT_NAME}'"


@pytest.mark.anyio
async def test_a_429_without_retry_after_waits_for_the_ratelimit_reset(standin: Standin) -> None:
    await standin.fault(status=429, ratelimit_reset=3)
    error = await standin.query_error()
    assert error.retry_after == 3.0
    assert error.explain().startswith("rate limited by Datadog (retry after 3s)")


@pytest.mark.anyio
async def test_a_503_with_retry_after_is_unavailable_for_that_long(standin: Standin) -> None:
    await standin.fault(status=503, retry_after=1)
    error = await standin.query_error()
    assert (error.status, error.retry_after, error.rate_limited) == (503, 1.0, False)
    assert error.explain() == "query failed: HTTP 503: Service Unavailable (retry after 1s)"
    assert standin.state.faulted == 1 and not standin.state.faults


@pytest.mark.anyio
@pytest.mark.parametrize(
    "document",
    [{"status": 200}, {"status": 429, "count": 0}, {"status": 429, "retry_after": "2"}, {"status": 429, "x": 1}],
)
async def test_the_fault_switch_refuses_what_it_cannot_play(standin: Standin, document: dict[str, object]) -> None:
    status, answer = await standin.fault(**document)
    assert status == 400 and answer["errors"]
    assert not standin.state.faults


async def _run_check(standin: Standin, wait_timeout: float) -> tuple[StepTimeout, Any]:
    from kibertas_async.checks.cleanup import CleanupGuard, CleanupStack
    from kibertas_async.checks.context import CheckContext
    from kibertas_async.events import get_logger
    from kibertas_async.kube import ClusterTarget
    from kibertas_async.options import OptionValues
    from kibertas_async_datadog.check import API_KEY as API_KEY_OPTION
    from kibertas_async_datadog.check import API_URL, WAIT_TIMEOUT, DatadogAgentCheck
    from kibertas_async_datadog.check import APP_KEY as APP_KEY_OPTION

    values = {option: option.default for option in DatadogAgentCheck.options}
    values.update({API_KEY_OPTION: API_KEY, APP_KEY_OPTION: APP_KEY, API_URL: standin.url, WAIT_TIMEOUT: wait_timeout})
    ctx = CheckContext(
        run_id="run",
        check_name=DatadogAgentCheck.name,
        cluster=ClusterTarget(name="sandbox-1"),
        options=OptionValues(values, {}),
        log=get_logger(),
        cleanup=CleanupStack(keep=False, action_timeout=1.0, guard=CleanupGuard()),
        kube=None,
    )
    with pytest.raises(StepTimeout) as raised:
        await DatadogAgentCheck().run(ctx)
    return raised.value, ctx


@pytest.mark.anyio
async def test_a_rate_limit_that_outlasts_the_wait_is_a_timeout_naming_it(standin: Standin) -> None:
    await standin.fault(status=429, count=1000, retry_after=1)
    error, ctx = await _run_check(standin, wait_timeout=3.5)
    assert error.step == STEP_WAIT_FOR_METRICS
    assert error.reason.startswith("no answer from Datadog within 3.5s (")
    assert "last: rate limited by Datadog (retry after 1s)" in error.reason
    [step] = ctx.results
    assert step.outcome is Outcome.TIMEOUT
    assert "rate limited by Datadog (retry after 1s)" in step.detail
    times = [request["at"] for request in standin.state.recent]
    assert len(times) >= 2
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(times))


@pytest.mark.anyio
async def test_a_wait_longer_than_the_time_left_is_not_cut_short(standin: Standin) -> None:
    await standin.fault(status=429, count=10, retry_after=60)
    error, _ = await _run_check(standin, wait_timeout=2.0)
    assert "rate limited by Datadog (retry after 60s)" in error.reason
    assert standin.state.requests == 1, "no query before the 60 s Datadog asked for"
    assert json.dumps(error.reason).count(API_KEY) == 0
