"""A stand-in for Chatwork's message endpoint: ``POST /v2/rooms/{room_id}/messages``.

It behaves as Chatwork does for the parts a notifier relies on:

- the ``X-ChatWorkToken`` header must carry the expected token, otherwise ``401`` with
  ``{"errors": ["Invalid API token"]}``;
- the room id must be digits (and, when ``rooms`` is given, one of them), otherwise ``404``;
- the form field ``body`` (``application/x-www-form-urlencoded`` or multipart) is required and must not
  be blank, otherwise ``400``;
- success is ``200`` with ``{"message_id": "..."}``.

Faults are scripted per request: :meth:`ChatworkStandin.rate_limit_next` answers ``429`` (with
``Retry-After`` and Chatwork's ``X-RateLimit-*`` headers) and :meth:`ChatworkStandin.fail_next` answers
a server error, each for the next *N* requests, before any other check. Every request is recorded in
:attr:`ChatworkStandin.requests` (with its arrival time, to measure a client's waits), every accepted
message in :attr:`ChatworkStandin.messages`.

Example::

    async with ChatworkStandin(token="t0ken") as chatwork:
        chatwork.rate_limit_next(1, retry_after="2")
        ...  # POST to f"{chatwork.api_url}/rooms/42/messages"
        assert chatwork.messages[0].body.startswith("[info]")
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["ChatworkStandin", "PostedMessage", "ReceivedRequest"]

DEFAULT_TOKEN = "standin-chatwork-token"
"""The token the stand-in accepts unless told otherwise."""


@dataclass(frozen=True)
class ReceivedRequest:
    """One request to the message endpoint, as received, and the status it was answered with."""

    room_id: str
    token: str | None
    """The ``X-ChatWorkToken`` header (``None`` when absent)."""
    content_type: str
    form: dict[str, str]
    status: int
    received_at: float = field(default_factory=time.monotonic)
    """When it arrived, on ``time.monotonic()``: the gaps between two requests are the client's waits."""


@dataclass(frozen=True)
class PostedMessage:
    """A message the stand-in accepted."""

    room_id: str
    body: str
    message_id: str


@dataclass(frozen=True)
class _ScriptedFault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


class ChatworkStandin:
    """A local HTTP server implementing Chatwork's ``POST /v2/rooms/{room_id}/messages``.

    :param token: the API token it accepts.
    :param rooms: the room ids that exist; any room id made of digits when ``None``.
    """

    def __init__(self, *, token: str = DEFAULT_TOKEN, rooms: Collection[str] | None = None) -> None:
        self.token = token
        self.rooms = None if rooms is None else {str(room) for room in rooms}
        self.requests: list[ReceivedRequest] = []
        """Every request to the message endpoint, in order, with the status it got."""
        self.messages: list[PostedMessage] = []
        """Every message accepted, in order."""
        self._faults: deque[_ScriptedFault] = deque()
        self._message_ids = itertools.count(1_000_000_001)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of ``127.0.0.1``."""
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/v2/rooms/{room_id}/messages", self._post_message)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def aclose(self) -> None:
        """Stop listening and drop open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ChatworkStandin:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def api_url(self) -> str:
        """The API base URL to give a client, like ``https://api.chatwork.com/v2``."""
        if self._port is None:
            raise RuntimeError("the Chatwork stand-in is not started")
        return f"http://127.0.0.1:{self._port}/v2"

    # --- scripted faults -----------------------------------------------------------------------

    def rate_limit_next(self, count: int = 1, *, retry_after: str | None = "1", reset_in: float | None = None) -> None:
        """Answer the next ``count`` requests with ``429 Too Many Requests``.

        :param retry_after: the ``Retry-After`` header (seconds, or an HTTP date); omitted when ``None``.
        :param reset_in: also send ``X-RateLimit-Reset`` (Unix time) this many seconds from now.
        """
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if reset_in is not None:
            headers["X-RateLimit-Reset"] = str(int(time.time() + reset_in))
        self._faults.extend(_ScriptedFault(429, headers, ("Rate limit exceeded",)) for _ in range(count))

    def fail_next(self, count: int = 1, *, status: int = 500) -> None:
        """Answer the next ``count`` requests with the server error ``status``."""
        self._faults.extend(_ScriptedFault(status) for _ in range(count))

    # --- the endpoint --------------------------------------------------------------------------

    async def _post_message(self, request: web.Request) -> web.Response:
        received_at = time.monotonic()
        room_id = request.match_info["room_id"]
        token = request.headers.get("X-ChatWorkToken")
        form = {key: str(value) for key, value in (await request.post()).items()}

        def answer(status: int, document: object, headers: dict[str, str] | None = None) -> web.Response:
            from aiohttp import web

            self.requests.append(ReceivedRequest(room_id, token, request.content_type, form, status, received_at))
            return web.Response(
                status=status, text=json.dumps(document), content_type="application/json", headers=headers
            )

        if self._faults:
            fault = self._faults.popleft()
            return answer(fault.status, {"errors": list(fault.errors)}, fault.headers)
        if token != self.token:
            return answer(401, {"errors": ["Invalid API token"]})
        if not room_id.isdigit() or (self.rooms is not None and room_id not in self.rooms):
            return answer(404, {"errors": ["Resource not found"]})
        body = form.get("body", "")
        if not body.strip():
            return answer(400, {"errors": ["Parameter 'body' is required"]})
        message_id = str(next(self._message_ids))
        self.messages.append(PostedMessage(room_id, body, message_id))
        return answer(200, {"message_id": message_id})
