"""The S3 clients of one event loop share one ``aioboto3.Session``, and still each signs with its own
keys; another event loop gets a session of its own."""

from __future__ import annotations

import asyncio
import re

import anyio
import pytest
from anyio.abc import SocketStream

from kibertas_async_fluent.s3 import LogBucket, S3Settings, shared_session

LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Name>logs</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys>"
    b"<IsTruncated>false</IsTruncated></ListBucketResult>"
)


def _settings(endpoint: str, key: str) -> S3Settings:
    return S3Settings(
        bucket="logs",
        endpoint_url=endpoint,
        region="us-east-1",
        path_style=True,
        access_key_id=key,
        secret_access_key=f"secret-of-{key}",
        request_timeout=10.0,
    )


async def _signed_with(keys: list[str]) -> tuple[list[str], int]:
    """Each key's ``check_access`` against a local endpoint answering an empty listing: the access key
    ids the endpoint saw, in order, and how many sessions served the clients."""
    seen: list[str] = []

    async def answer(stream: SocketStream) -> None:
        async with stream:
            request = b""
            while b"\r\n\r\n" not in request:
                request += await stream.receive()
            credential = re.search(rb"Credential=([A-Z0-9]+)/", request)
            seen.append(credential.group(1).decode() if credential else "")
            await stream.send(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nConnection: close\r\n"
                + f"Content-Length: {len(LISTING)}\r\n\r\n".encode()
                + LISTING
            )

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    endpoint = f"http://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}"
    sessions = set()
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, answer)
        for key in keys:
            async with LogBucket(_settings(endpoint, key)) as bucket:
                await bucket.check_access()
            sessions.add(id(shared_session()))
        group.cancel_scope.cancel()
    return seen, len(sessions)


def test_clients_of_one_loop_share_the_session_and_sign_with_their_own_keys() -> None:
    seen, sessions = asyncio.run(_signed_with(["AKIAFIRSTCLUSTER", "AKIASECONDCLUSTER"]))
    assert seen == ["AKIAFIRSTCLUSTER", "AKIASECONDCLUSTER"]
    assert sessions == 1


def test_each_event_loop_has_its_own_session() -> None:
    async def session() -> object:
        return shared_session()

    first = asyncio.run(session())
    second = asyncio.run(session())  # ``first`` is still referenced: its id cannot be reused
    assert first is not second


def test_outside_an_event_loop_there_is_no_session() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        shared_session()
