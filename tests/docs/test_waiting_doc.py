"""docs/example-plugin/waiting.md tells the truth: its poll example runs as described, and its wait_for
example is the ingress check's code, word for word."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kibertas_async import CheckFailed, Outcome
from kibertas_async.checks import CheckContext, CleanupGuard, CleanupStack
from kibertas_async.events import get_logger
from kibertas_async.kube import ClusterTarget
from kibertas_async.options import OptionValues

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "example-plugin" / "waiting.md").read_text(encoding="utf-8")
INGRESS_CHECK = ROOT / "plugins" / "kibertas-async-ingress" / "kibertas_async_ingress" / "check.py"
POLL_EXAMPLE, WAIT_FOR_EXAMPLE = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)

WaitUntilHealthy = Callable[..., Awaitable[int]]


@pytest.fixture
def wait_until_healthy() -> WaitUntilHealthy:
    namespace: dict[str, Any] = {}
    exec(compile(POLL_EXAMPLE, "waiting.md", "exec"), namespace)
    function: WaitUntilHealthy = namespace["wait_until_healthy"]
    return function


def _context() -> CheckContext:
    return CheckContext(
        run_id="docs",
        check_name="docs",
        cluster=ClusterTarget("alpha"),
        options=OptionValues({}, {}),
        log=get_logger(),
        cleanup=CleanupStack(keep=False, action_timeout=1.0, guard=CleanupGuard()),
        kube=None,
    )


def _server(*answers: tuple[int, float | None]) -> tuple[Callable[[], Awaitable[tuple[int, float | None]]], list[int]]:
    """A fake GET playing ``answers`` in order (the last one for ever), and the list of calls made."""
    calls: list[int] = []

    async def get() -> tuple[int, float | None]:
        calls.append(len(calls) + 1)
        return answers[min(len(calls), len(answers)) - 1]

    return get, calls


@pytest.mark.anyio
async def test_the_poll_example_retries_until_200(wait_until_healthy: WaitUntilHealthy) -> None:
    get, calls = _server((503, None), (429, 0.01), (200, None))
    assert await wait_until_healthy(_context(), get) == 200
    assert len(calls) == 3


@pytest.mark.anyio
async def test_the_poll_example_fails_at_once_on_401(wait_until_healthy: WaitUntilHealthy) -> None:
    ctx = _context()
    get, calls = _server((503, None), (401, None), (200, None))
    with pytest.raises(CheckFailed) as failed:
        await wait_until_healthy(ctx, get)
    assert (failed.value.reason, failed.value.step) == ("the service rejected our token (HTTP 401)", "wait for healthz")
    assert len(calls) == 2
    assert ctx.results[0].outcome is Outcome.FAILED


@pytest.mark.anyio
async def test_the_poll_example_fails_with_the_last_answer_when_time_is_up(
    wait_until_healthy: WaitUntilHealthy,
) -> None:
    get, calls = _server((503, None))
    with pytest.raises(CheckFailed) as failed:
        await wait_until_healthy(_context(), get, timeout=0.3)
    assert failed.value.reason == f"/healthz never answered 200 within 0.3s ({len(calls)} attempts; last: HTTP 503)"


def test_the_wait_for_example_is_the_ingress_checks_code() -> None:
    assert textwrap.indent(WAIT_FOR_EXAMPLE, " " * 8) in INGRESS_CHECK.read_text(encoding="utf-8")
