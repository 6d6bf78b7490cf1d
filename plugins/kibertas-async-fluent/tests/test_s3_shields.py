"""Every S3 request is shielded from outside cancellation (aiobotocore leaks a connection cancelled
midway) and the shield has its own deadline: an S3 endpoint that accepts connections but never answers
cannot hold the check, its cleanup or a signal beyond ``request_timeout``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest
from anyio.abc import SocketStream

from kibertas_async_fluent.s3 import LogBucket, S3Settings, S3Unavailable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def silent_endpoint() -> AsyncIterator[str]:
    """An HTTP endpoint on loopback that reads requests and never answers."""
    held: list[SocketStream] = []

    async def hold(stream: SocketStream) -> None:
        held.append(stream)
        with anyio.move_on_after(60):
            async for _chunk in stream:
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, hold)
        yield f"http://127.0.0.1:{port}"
        group.cancel_scope.cancel()
    for stream in held:
        await stream.aclose()


def _settings(endpoint: str) -> S3Settings:
    return S3Settings(
        bucket="logs",
        endpoint_url=endpoint,
        region="us-east-1",
        path_style=True,
        access_key_id="AKIATESTTESTTEST",
        secret_access_key="test-secret-key-000",
        request_timeout=1.0,
    )


@pytest.mark.parametrize("call", ["check_access", "list", "read"])
async def test_a_silent_s3_ends_each_request_at_its_shield_deadline(silent_endpoint: str, call: str) -> None:
    async with LogBucket(_settings(silent_endpoint)) as bucket:
        request: Callable[[], Awaitable[object]] = {
            "check_access": bucket.check_access,
            "list": lambda: bucket.list("prefix/"),
            "read": lambda: bucket.read("prefix/object.gz"),
        }[call]
        with pytest.raises(S3Unavailable, match=r"S3 did not answer within 1s"):
            await request()


async def test_outside_cancellation_waits_for_the_shielded_request_no_longer_than_its_deadline(
    silent_endpoint: str,
) -> None:
    async with LogBucket(_settings(silent_endpoint)) as bucket:
        started = anyio.current_time()
        with anyio.move_on_after(0.1) as outside, pytest.raises(S3Unavailable):
            await bucket.list("prefix/")
        waited = anyio.current_time() - started
    assert not outside.cancelled_caught or waited >= 1.0
    assert waited >= 1.0, "the request was shielded from the outside deadline until its own one"
