"""``ctx.poll``, ``ctx.wait_for``'s time limit, :class:`TemporaryError` and :class:`PermanentError`, with no
cluster: a wait whose time runs out is FAILED (NG) in the current step with what it saw last; a
permanent error stops it at once; a temporary error's delay is the least wait before the next attempt.

Delays are checked by counting attempts and recording the waits asked for, never by the clock.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from kibertas_async import CheckFailed, Outcome, PermanentError, PollState, TemporaryError
from kibertas_async.checks import CheckContext, CleanupGuard, CleanupStack
from kibertas_async.checks.waiting import poll
from kibertas_async.events import get_logger
from kibertas_async.kube import ClusterTarget
from kibertas_async.kube.resources import CONFIGMAPS
from kibertas_async.options import OptionValues

pytestmark = pytest.mark.anyio


def _context() -> CheckContext:
    return CheckContext(
        run_id="waiting",
        check_name="waiting",
        cluster=ClusterTarget("alpha"),
        options=OptionValues({}, {}),
        log=get_logger(),
        cleanup=CleanupStack(keep=False, action_timeout=1.0, guard=CleanupGuard()),
        kube=None,
        deadline=math.inf,
    )


class Recorder:
    """A ``sleep`` that returns at once and remembers each wait it was asked for."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Script:
    """An attempt that plays its answers in order: a value is returned, an exception raised."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def test_a_poll_that_times_out_fails_in_its_step_with_the_last_observation() -> None:
    ctx = _context()
    calls = 0

    async def attempt() -> str | None:
        nonlocal calls
        calls += 1
        raise TemporaryError(f"attempt {calls}: 503 Service Unavailable")

    with pytest.raises(CheckFailed) as failed:
        async with ctx.step("http request"):
            await ctx.poll(attempt, timeout=0.3, first_delay=0.01, max_delay=0.02)
    assert calls >= 2
    assert failed.value.step == "http request"
    assert failed.value.reason == (
        f"no success within 0.3s; last seen: attempt {calls}: 503 Service Unavailable ({calls} attempts)"
    )
    [step] = ctx.results
    assert step.outcome is Outcome.FAILED
    assert step.detail == f"attempt {calls}: 503 Service Unavailable", "the message is the step's progress"


async def test_fail_as_a_sentence_gets_the_duration_and_the_last_message() -> None:
    ctx = _context()
    with pytest.raises(CheckFailed) as failed:
        async with ctx.step("resolve host"):
            await ctx.poll(Script(TemporaryError("NXDOMAIN")), timeout=0.2, fail="the host never resolved")
    assert failed.value.reason == "the host never resolved within 0.2s; last seen: NXDOMAIN"


@pytest.mark.parametrize("is_async", [False, True])
async def test_fail_as_a_function_builds_the_whole_reason_from_the_poll_state(is_async: bool) -> None:
    seen: list[PollState] = []

    def reason(state: PollState) -> str:
        seen.append(state)
        return f"after {state.waited} and {state.attempts} attempts: {state.observation}"

    async def async_reason(state: PollState) -> str:
        return reason(state)

    script = Script(TemporaryError("empty series"))
    with pytest.raises(CheckFailed) as failed:
        await poll(script, timeout=0.2, fail=async_reason if is_async else reason, first_delay=0.01)
    [state] = seen
    assert state.attempts == script.calls >= 2
    assert isinstance(state.error, TemporaryError)
    assert failed.value.reason == f"after 0.2s and {script.calls} attempts: empty series"


async def test_an_attempt_returning_none_leaves_no_observation() -> None:
    with pytest.raises(CheckFailed) as failed:
        await poll(Script(None), timeout=0.1, fail="nothing came", first_delay=0.01)
    assert failed.value.reason == "nothing came within 0.1s; last seen: no result yet"


async def test_a_permanent_error_stops_at_once_and_fails_with_its_message() -> None:
    ctx = _context()
    script = Script(TemporaryError("not yet"), PermanentError("Datadog rejected the API key (HTTP 403)"), "never")
    sleep = Recorder()
    with pytest.raises(CheckFailed) as failed:
        async with ctx.step("wait for metrics"):
            await poll(script, timeout=60, fail="unused", sleep=sleep, on_progress=ctx.progress)
    assert isinstance(failed.value, PermanentError)
    assert failed.value.reason == "Datadog rejected the API key (HTTP 403)"
    assert failed.value.step == "wait for metrics"
    assert script.calls == 2, "no attempt after the permanent error"
    assert len(sleep.waits) == 1
    assert ctx.results[0].outcome is Outcome.FAILED


async def test_a_temporary_errors_delay_is_the_least_wait_before_the_next_attempt() -> None:
    sleep = Recorder()
    script = Script(TemporaryError("429", delay=7.0), TemporaryError("429", delay=7.0), TemporaryError("503"), "ok")
    assert await poll(script, first_delay=0.5, max_delay=5.0, sleep=sleep) == "ok"
    assert script.calls == 4
    assert sleep.waits[:2] == [7.0, 7.0], "Retry-After wins over a shorter backoff"
    assert 0.8 * 2.0 <= sleep.waits[2] <= 1.2 * 2.0, "then the backoff goes on where it was"


async def test_a_delay_shorter_than_the_backoff_does_not_shorten_it() -> None:
    sleep = Recorder()
    await poll(Script(TemporaryError("busy", delay=0.0), "ok"), first_delay=3.0, sleep=sleep)
    [wait] = sleep.waits
    assert 0.8 * 3.0 <= wait <= 1.2 * 3.0


async def test_a_delay_longer_than_the_time_left_means_no_second_attempt() -> None:
    script = Script(TemporaryError("rate limited (retry after 60s)", delay=60.0))
    with pytest.raises(CheckFailed) as failed:
        await poll(script, timeout=0.3, first_delay=0.01)
    assert script.calls == 1
    assert "last seen: rate limited (retry after 60s) (1 attempts)" in failed.value.reason


async def test_other_exceptions_are_raised_as_they_are() -> None:
    with pytest.raises(ZeroDivisionError):
        await poll(Script(ZeroDivisionError("bug")), timeout=1)


async def test_a_temporary_error_outside_poll_is_not_a_check_failure() -> None:
    assert not issubclass(TemporaryError, CheckFailed)
    assert issubclass(PermanentError, CheckFailed)
    error = TemporaryError("slow", delay=2.5)
    assert (error.message, error.delay, str(error)) == ("slow", 2.5, "slow")


async def test_fail_without_timeout_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="give timeout="):
        await poll(Script("ok"), fail="never")
    with pytest.raises(TypeError, match="give timeout="):
        await _context().wait_for(CONFIGMAPS, "x", "ns", lambda obj: obj is not None, fail="never")


async def test_a_poll_without_timeout_returns_the_first_value() -> None:
    script = Script(None, TemporaryError("warming up"), {"answer": 42})
    assert await poll(script, first_delay=0.001) == {"answer": 42}
    assert script.calls == 3
