"""Posting one message to a Chatwork room, with bounded retries. The only module that imports aiohttp.

:func:`post_message` never raises for delivery problems: it returns a :class:`Delivery` saying what
happened. Rate limits (429), server errors (5xx), timeouts and connection errors are retried with
exponential backoff and jitter, honouring ``Retry-After`` (or Chatwork's ``X-RateLimit-Reset``); any
other answer (401 bad token, 403, 404 unknown room, 400) ends the attempt at once. Cancellation is never
caught. The token is sent in one header and appears in no log event, reason or ``repr``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kibertas_async import get_logger

if TYPE_CHECKING:
    from aiohttp import ClientResponse

NOTIFIER_NAME = "chatwork"
"""The notifier's name in events (``notifier=chatwork``) and in the engine's logs."""

Sleep = Callable[[float], Awaitable[None]]
"""How to wait between attempts (``anyio.sleep``; tests pass a recorder)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up. The engine's ``notify-timeout`` bounds the whole effort too."""

    max_attempts: int = 4
    """Requests sent at most, the first included."""
    base_delay: float = 1.0
    """Backoff before the second attempt; it doubles for each further one (before jitter)."""
    max_delay: float = 20.0
    """Longest backoff between attempts when Chatwork does not say how long to wait."""
    max_retry_after: float = 60.0
    """Longest wait Chatwork may ask for (``Retry-After``); asked for more, we give up rather than
    hold the end of the run (Chatwork's rate-limit window is 5 minutes)."""
    request_timeout: float = 15.0
    """Time limit of each request, connecting included."""

    def backoff(self, attempt: int, jitter: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), when not told how long.

        "Equal jitter": half the exponential delay, plus up to the other half at random, so that several
        runs failing together do not retry in step.
        """
        delay = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return delay / 2 + delay / 2 * jitter()


@dataclass(frozen=True)
class Delivery:
    """What happened to one message."""

    delivered: bool
    attempts: int
    """Requests sent."""
    status: int | None = None
    """HTTP status of the last answer; ``None`` when no answer came (connection error, timeout)."""
    message_id: str | None = None
    """Chatwork's id of the posted message."""
    reason: str = ""
    """Why it was not delivered, for a human."""


@dataclass(frozen=True)
class _Answer:
    status: int
    text: str
    headers: dict[str, str] = field(default_factory=dict)


async def post_message(
    *,
    api_url: str,
    room_id: str,
    token: str,
    body: str,
    policy: RetryPolicy | None = None,
    sleep: Sleep | None = None,
    jitter: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.time,
) -> Delivery:
    """Post ``body`` to room ``room_id`` through the Chatwork API at ``api_url`` (e.g.
    ``https://api.chatwork.com/v2``): ``POST {api_url}/rooms/{room_id}/messages``, header
    ``X-ChatWorkToken``, form field ``body``.

    :param policy: attempts and delays; :class:`RetryPolicy` defaults when ``None``.
    :param sleep: waits between attempts; ``anyio.sleep`` when ``None``.
    :param jitter: a number in [0, 1) per backoff; ``clock``: Unix time, to read ``X-RateLimit-Reset``.
    """
    import aiohttp

    policy = policy or RetryPolicy()
    if sleep is None:
        import anyio

        sleep = anyio.sleep
    log = get_logger(notifier=NOTIFIER_NAME, room_id=room_id)
    url = f"{api_url.rstrip('/')}/rooms/{room_id}/messages"
    timeout = aiohttp.ClientTimeout(total=policy.request_timeout)
    last = Delivery(delivered=False, attempts=0, reason="no attempt made")
    async with aiohttp.ClientSession(timeout=timeout, raise_for_status=False) as session:
        for attempt in range(1, policy.max_attempts + 1):
            try:
                async with session.post(url, data={"body": body}, headers={"X-ChatWorkToken": token}) as response:
                    answer = await _read(response)
            except (aiohttp.ClientConnectionError, TimeoutError) as error:
                # str() only: the repr of aiohttp's errors can carry the request, headers included.
                reason = _scrub(f"no answer: {type(error).__name__}: {error}".rstrip(": "), token)
                last = Delivery(delivered=False, attempts=attempt, reason=reason)
                wait = policy.backoff(attempt, jitter)
            except aiohttp.ClientError as error:
                reason = _scrub(f"request failed: {type(error).__name__}: {error}", token)
                return Delivery(delivered=False, attempts=attempt, reason=reason)
            else:
                if 200 <= answer.status < 300:
                    return Delivery(
                        delivered=True, attempts=attempt, status=answer.status, message_id=_message_id(answer)
                    )
                reason = _scrub(_explain(answer, room_id), token)
                last = Delivery(delivered=False, attempts=attempt, status=answer.status, reason=reason)
                if answer.status != 429 and not 500 <= answer.status < 600:
                    return last
                asked = _asked_wait(answer, clock)
                if asked is not None and asked > policy.max_retry_after:
                    return Delivery(
                        delivered=False,
                        attempts=attempt,
                        status=answer.status,
                        reason=f"{reason}; Chatwork asks to wait {asked:.0f}s, "
                        f"longer than the {policy.max_retry_after:g}s this notifier waits",
                    )
                wait = policy.backoff(attempt, jitter) if asked is None else asked
            if attempt == policy.max_attempts:
                break
            log.warning(
                "notifier.retrying",
                attempt=attempt,
                status=last.status,
                reason=last.reason,
                delay=round(wait, 2),
            )
            await sleep(wait)
    return Delivery(
        delivered=False,
        attempts=last.attempts,
        status=last.status,
        reason=f"gave up after {_attempts(last.attempts)}: {last.reason}",
    )


async def _read(response: ClientResponse) -> _Answer:
    text = await response.text(errors="replace")
    return _Answer(status=response.status, text=text, headers={k.lower(): v for k, v in response.headers.items()})


def _message_id(answer: _Answer) -> str | None:
    document = _json(answer.text)
    value = document.get("message_id") if isinstance(document, dict) else None
    return None if value is None else str(value)


def _explain(answer: _Answer, room_id: str) -> str:
    """A one-line reason for a refused request, with Chatwork's own ``errors`` when it gave them."""
    meaning = {
        400: "Chatwork refused the message",
        401: "Chatwork rejected the API token",
        403: f"the token's account may not post in room {room_id}",
        404: f"room {room_id} not found (or the API URL is wrong)",
        429: "rate limited by Chatwork",
    }.get(answer.status, "Chatwork server error" if answer.status >= 500 else "unexpected answer")
    document = _json(answer.text)
    errors = document.get("errors") if isinstance(document, dict) else None
    said = "; ".join(str(error) for error in errors) if isinstance(errors, list) else ""
    return f"{meaning} (HTTP {answer.status}{': ' + said[:200] if said else ''})"


def _asked_wait(answer: _Answer, clock: Callable[[], float]) -> float | None:
    """Seconds Chatwork asks us to wait: ``Retry-After`` (seconds or a date), else, on 429, until
    ``X-RateLimit-Reset`` (Unix time). ``None`` when it does not say."""
    retry_after = answer.headers.get("retry-after", "").strip()
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
        from email.utils import parsedate_to_datetime  # rarely needed; costly to import

        try:
            return max(0.0, parsedate_to_datetime(retry_after).timestamp() - clock())
        except (TypeError, ValueError):
            pass
    reset = answer.headers.get("x-ratelimit-reset", "").strip()
    if answer.status == 429 and reset:
        try:
            return max(0.0, float(reset) - clock())
        except ValueError:
            pass
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _scrub(text: str, token: str) -> str:
    """Blank the token, should a server or library ever echo it back."""
    return text.replace(token, "<redacted>") if token else text


def _attempts(count: int) -> str:
    return "1 attempt" if count == 1 else f"{count} attempts"
