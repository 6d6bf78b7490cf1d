"""Waits that end in NG: polling with a time limit, and what an attempt raises to say "not yet" or "never".

A check polls what it cannot watch (DNS, HTTP, S3, a vendor's API) with :func:`poll` (``ctx.poll``), and
watches Kubernetes objects with ``ctx.wait_for``. Given ``timeout=``, both end the check as FAILED, in the
current step, when the time is up, with a reason built from what they saw last (``fail=``): the add-on
did not do its job in time, which is NG. Without ``timeout=`` the step's or check's own deadline bounds
the wait, and running into it is TIMEOUT.

An attempt tells :func:`poll` how it went, as kopf's handlers tell kopf:

- it returns a value: done, :func:`poll` returns it;
- it returns ``None``, or raises :class:`TemporaryError`: not yet; the error's message is the latest
  observation (the step's progress, and the reason's "last"), and its ``delay`` the least time before
  the next attempt (a server's ``Retry-After``);
- it raises :class:`PermanentError` (or calls ``ctx.fail``): NG at once, never retried;
- anything else escaping it ends the check as ERROR, as anywhere in a check.

Errors::

    KibertasError
    ├── TemporaryError            not yet: poll tries again (after ``delay``, if given)
    └── CheckError
        └── CheckFailed           NG (``ctx.fail``)
            └── PermanentError    NG from an attempt: poll stops at once
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from kibertas_async.errors import CheckFailed, KibertasError
from kibertas_async.options.option import format_duration

T = TypeVar("T")
V = TypeVar("V")

Sleep = Callable[[float], Awaitable[None]]
"""How :func:`poll` waits between attempts (``anyio.sleep``; tests pass a recorder)."""


class TemporaryError(KibertasError):
    """Raised by a :func:`poll` attempt: not yet, for this reason; try again.

    :param message: what this attempt saw (``NXDOMAIN``, ``503 Service Unavailable``), for the step's
        progress and, if it was the last attempt, the failure's reason.
    :param delay: the least number of seconds before the next attempt (what a server asked for), or
        ``None`` for :func:`poll`'s own backoff. The wait is the longer of the two.

    Only :func:`poll` understands it: escaping anything else, it ends the check as ERROR.
    """

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.delay = delay


class PermanentError(CheckFailed):
    """Raised by a :func:`poll` attempt (or anywhere in a check): NG, waiting cannot help (a rejected key,
    a missing bucket). :func:`poll` stops at once and the check is FAILED, in the current step, with
    ``message`` as its reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclass
class PollState:
    """What :func:`poll` knows when the time is up: given to its ``fail`` to build the reason."""

    timeout: float
    """The time limit that ran out, in seconds."""
    attempts: int = 0
    """Attempts started, the one the time limit cut short included."""
    error: TemporaryError | None = None
    """What the last finished attempt raised; ``None`` if it returned ``None`` (or none finished)."""

    @property
    def observation(self) -> str:
        """The last attempt's message, or ``no result yet``."""
        return self.error.message if self.error is not None else "no result yet"

    @property
    def waited(self) -> str:
        """The time limit as a duration (``30s``, ``5m``)."""
        return format_duration(self.timeout)


Failure = str | Callable[[V], str | Awaitable[str]]
"""``fail=`` of :func:`poll` and ``ctx.wait_for``: a sentence (the wait's duration and the last
observation are added to it), or a function of the last observation returning the whole reason (it may
be async, to look something up, and may raise another :class:`~kibertas_async.errors.CheckError` to end
differently, e.g. ``StepTimeout`` when the last attempt got no answer at all and so proves nothing)."""


async def failure_reason(fail: Failure[V] | None, last: V, *, waited: str, observation: str, default: str) -> str:
    """The reason a wait with ``fail`` gives when its time is up (see :data:`Failure`)."""
    if fail is None or isinstance(fail, str):
        return f"{fail or default} within {waited}; last seen: {observation}"
    reason = fail(last)
    if inspect.isawaitable(reason):
        reason = await reason
    return str(reason)


async def poll(
    attempt: Callable[[], Awaitable[T | None]],
    *,
    timeout: float | None = None,
    fail: Failure[PollState] | None = None,
    first_delay: float = 0.5,
    max_delay: float = 15.0,
    on_progress: Callable[[str], None] | None = None,
    sleep: Sleep = anyio.sleep,
) -> T:
    """Call ``attempt`` until it returns something other than ``None``; return that.

    The first attempt is immediate; then the waits back off exponentially, with jitter, from
    ``first_delay`` to ``max_delay`` seconds, but are never shorter than a :class:`TemporaryError`'s
    ``delay``. A :class:`TemporaryError`'s message goes to ``on_progress`` (``ctx.poll``: the step's
    progress). A :class:`PermanentError` (any ``CheckError``), or any other exception, ends the poll at
    once and is raised as is; cancellation is never caught.

    :param timeout: with it, when ``timeout`` seconds have passed, the check FAILS (``CheckFailed``) in
        the current step, with a reason made by ``fail`` from a :class:`PollState` (``fail`` a sentence:
        ``"<fail> within 30s; last seen: <the last attempt's message>"``). Without it the step's or the
        check's deadline bounds the poll, and reaching it is TIMEOUT.
    :param sleep: how to wait between attempts (tests pass a recorder).
    """
    if fail is not None and timeout is None:
        raise TypeError("poll: fail= applies when the timeout= runs out; give timeout=")
    state = PollState(timeout=timeout if timeout is not None else float("inf"))
    with anyio.move_on_after(timeout if timeout is not None else float("inf")):
        return await _poll(attempt, state, first_delay, max_delay, on_progress, sleep)
    reason = await failure_reason(fail, state, waited=state.waited, observation=state.observation, default="no success")
    if fail is None:
        reason = f"{reason} ({state.attempts} attempts)"
    raise CheckFailed(reason)


async def _poll(
    attempt: Callable[[], Awaitable[T | None]],
    state: PollState,
    first_delay: float,
    max_delay: float,
    on_progress: Callable[[str], None] | None,
    sleep: Sleep,
) -> T:
    delay = first_delay
    while True:
        state.attempts += 1
        try:
            value = await attempt()
        except TemporaryError as error:
            state.error = error
            if on_progress is not None:
                on_progress(error.message)
            wait = delay * random.uniform(0.8, 1.2)
            if error.delay is not None:
                wait = max(wait, error.delay)
        else:
            if value is not None:
                return value
            state.error = None
            wait = delay * random.uniform(0.8, 1.2)
        await sleep(wait)
        delay = min(max_delay, delay * 2)
