"""Sending: the request Chatwork gets, retries, and the answers that end it at once."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from kibertas_async_chatwork.client import Delivery, RetryPolicy, post_message
from kibertas_async_chatwork.standin import ChatworkStandin

pytestmark = pytest.mark.anyio

ROOM = "123456789"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, request_timeout=5.0)


class RecordedSleep:
    """Stands in for ``anyio.sleep``: remembers each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def send(
    chatwork: ChatworkStandin, sleep: RecordedSleep, *, token: str | None = None, **kwargs: object
) -> Delivery:
    return await post_message(
        api_url=chatwork.api_url,
        room_id=ROOM,
        token=chatwork.token if token is None else token,
        body="[info]hello[/info]",
        policy=FAST,
        sleep=sleep,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_posts_the_token_header_and_the_form_body(chatwork: ChatworkStandin) -> None:
    delivery = await send(chatwork, RecordedSleep())

    assert delivery == Delivery(delivered=True, attempts=1, status=200, message_id=chatwork.messages[0].message_id)
    [request] = chatwork.requests
    assert request.token == chatwork.token
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.form == {"body": "[info]hello[/info]"}
    assert request.room_id == ROOM


async def test_rate_limit_is_retried_after_the_time_retry_after_asks(chatwork: ChatworkStandin) -> None:
    chatwork.rate_limit_next(2, retry_after="7")
    sleep = RecordedSleep()

    delivery = await send(chatwork, sleep)

    assert delivery.delivered
    assert delivery.attempts == 3
    assert sleep.waits == [7.0, 7.0]
    assert [request.status for request in chatwork.requests] == [429, 429, 200]
    assert len(chatwork.messages) == 1


async def test_retry_after_as_an_http_date_is_honoured(chatwork: ChatworkStandin) -> None:
    now = 1_800_000_000.0
    chatwork.rate_limit_next(1, retry_after=formatdate(now + 30, usegmt=True))
    sleep = RecordedSleep()

    delivery = await send(chatwork, sleep, clock=lambda: now)

    assert delivery.delivered
    assert sleep.waits == [30.0]


async def test_without_retry_after_the_rate_limit_reset_header_is_honoured(chatwork: ChatworkStandin) -> None:
    chatwork.rate_limit_next(1, retry_after=None, reset_in=20)
    sleep = RecordedSleep()

    delivery = await send(chatwork, sleep, clock=time.time)

    assert delivery.delivered
    [wait] = sleep.waits
    assert 15 <= wait <= 21


async def test_a_longer_wait_than_we_accept_gives_up_at_once(chatwork: ChatworkStandin) -> None:
    chatwork.rate_limit_next(1, retry_after="300")
    sleep = RecordedSleep()

    delivery = await send(chatwork, sleep)

    assert not delivery.delivered
    assert delivery.status == 429
    assert "asks to wait 300s" in delivery.reason
    assert sleep.waits == []
    assert len(chatwork.requests) == 1


async def test_server_errors_are_retried_with_growing_jittered_backoff(chatwork: ChatworkStandin) -> None:
    chatwork.fail_next(2, status=503)
    sleep = RecordedSleep()

    delivery = await send(chatwork, sleep, jitter=lambda: 0.5)

    assert delivery.delivered
    assert delivery.attempts == 3
    assert sleep.waits == [pytest.approx(0.0075), pytest.approx(0.015)]


async def test_backoff_stays_within_its_bounds() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)

    assert [policy.backoff(attempt, lambda: 0.0) for attempt in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [policy.backoff(attempt, lambda: 1.0) for attempt in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


async def test_attempts_are_bounded(chatwork: ChatworkStandin) -> None:
    chatwork.fail_next(10, status=500)
    sleep = RecordedSleep()

    delivery = await send(chatwork, sleep)

    assert not delivery.delivered
    assert delivery.attempts == FAST.max_attempts
    assert len(chatwork.requests) == FAST.max_attempts
    assert len(sleep.waits) == FAST.max_attempts - 1
    assert delivery.reason.startswith("gave up after 4 attempts: Chatwork server error (HTTP 500")


async def test_a_wrong_token_fails_at_once_without_raising(chatwork: ChatworkStandin) -> None:
    sleep = RecordedSleep()

    delivery = await send(chatwork, sleep, token="not-the-token")

    assert delivery == Delivery(
        delivered=False,
        attempts=1,
        status=401,
        reason="Chatwork rejected the API token (HTTP 401: Invalid API token)",
    )
    assert sleep.waits == []
    assert len(chatwork.requests) == 1


async def test_an_unknown_room_fails_at_once() -> None:
    async with ChatworkStandin(rooms={"1"}) as chatwork:
        delivery = await send(chatwork, RecordedSleep())

    assert not delivery.delivered
    assert delivery.status == 404
    assert f"room {ROOM} not found" in delivery.reason
    assert len(chatwork.requests) == 1


async def test_connection_errors_are_retried_then_reported() -> None:
    async with ChatworkStandin() as closed:
        api_url = closed.api_url  # nothing listens there once the stand-in is closed
    sleep = RecordedSleep()

    delivery = await post_message(
        api_url=api_url, room_id=ROOM, token="whatever", body="hello", policy=FAST, sleep=sleep
    )

    assert not delivery.delivered
    assert delivery.status is None
    assert delivery.attempts == FAST.max_attempts
    assert len(sleep.waits) == FAST.max_attempts - 1
    assert "no answer: ClientConnectorError" in delivery.reason


async def test_the_stand_in_refuses_a_missing_body(chatwork: ChatworkStandin) -> None:
    delivery = await post_message(
        api_url=chatwork.api_url, room_id=ROOM, token=chatwork.token, body="  ", policy=FAST, sleep=RecordedSleep()
    )

    assert delivery.status == 400
    assert not delivery.delivered
    assert chatwork.messages == []
