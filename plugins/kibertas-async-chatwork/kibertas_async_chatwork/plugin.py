"""The plugin: Chatwork options and, when a token and a room are set, the Chatwork notifier.

Registered through the entry point ``chatwork = "kibertas_async_chatwork.plugin"`` in the
``kibertas_async`` group. Importing it is cheap: aiohttp is imported only when a message is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

from kibertas_async import Notifier, Option, OptionValues, RunReport, get_logger, hookimpl, parse_positive_int
from kibertas_async_chatwork.client import NOTIFIER_NAME, RetryPolicy, Sleep, post_message
from kibertas_async_chatwork.message import format_message

NotifyWhen = Literal["always", "failure"]
"""``always``: after every run; ``failure``: only when the run is not OK."""

DEFAULT_API_URL = "https://api.chatwork.com/v2"
"""Chatwork's public API, version 2."""


def parse_token(text: str) -> str:
    """The token without surrounding whitespace (a Secret made with ``echo`` ends with a newline)."""
    return text.strip()


def parse_room_id(text: str) -> str:
    """A Chatwork room id: digits (the number after ``#!rid`` in the room's address); empty is unset."""
    room_id = text.strip().removeprefix("#!rid").removeprefix("rid")
    if room_id and not room_id.isdigit():
        raise ValueError(f"{text!r} is not a Chatwork room id (digits, as in #!rid123456)")
    return room_id


def parse_api_url(text: str) -> str:
    """An ``http(s)://`` base URL of the Chatwork API, without a trailing ``/``."""
    url = text.strip().rstrip("/")
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"{text!r} is not an http(s) URL (example: {DEFAULT_API_URL})")
    return url


def parse_notify_when(text: str) -> NotifyWhen:
    """``always`` or ``failure``, any case."""
    word = text.strip().lower()
    if word not in ("always", "failure"):
        raise ValueError(f"{text!r} is neither 'always' nor 'failure'")
    return cast(NotifyWhen, word)


API_TOKEN = Option[str](
    "chatwork-api-token",
    "Chatwork API token of the account that posts the run's summary (secret).",
    default="",
    parse=parse_token,
    env=("CHATWORK_API_TOKEN",),
    per_cluster=False,
    secret=True,
    metavar="TOKEN",
    requires=("chatwork-room-id",),
)
ROOM_ID = Option[str](
    "chatwork-room-id",
    "Chatwork room to post the run's summary in (digits); with the token, enables the notifier.",
    default="",
    parse=parse_room_id,
    env=("CHATWORK_ROOM_ID",),
    per_cluster=False,
    metavar="ROOM",
    requires=("chatwork-api-token",),
)
API_URL = Option[str](
    "chatwork-api-url",
    "Base URL of the Chatwork API.",
    default=DEFAULT_API_URL,
    parse=parse_api_url,
    env=("CHATWORK_API_URL",),
    per_cluster=False,
    metavar="URL",
)
NOTIFY_WHEN = Option[NotifyWhen](
    "chatwork-notify",
    "When to post: 'always', or 'failure' (only when the run is not OK).",
    default="always",
    parse=parse_notify_when,
    per_cluster=False,
    metavar="WHEN",
)
MAX_ATTEMPTS = Option[int](
    "chatwork-max-attempts",
    "Requests sent at most for the message, retries on 429, 5xx and connection errors included.",
    default=RetryPolicy().max_attempts,
    parse=parse_positive_int,
    per_cluster=False,
    metavar="N",
)

CHATWORK_OPTIONS: tuple[Option[Any], ...] = (API_TOKEN, ROOM_ID, API_URL, NOTIFY_WHEN, MAX_ATTEMPTS)
"""Every option this plugin registers, in ``--help`` order."""


@dataclass(frozen=True)
class ChatworkSettings:
    """Where and when to post; built from the options by :func:`kibertas_async_register_notifiers`."""

    token: str = field(repr=False)
    """The API token; kept out of ``repr`` so that it cannot reach a log by accident."""
    room_id: str
    api_url: str = DEFAULT_API_URL
    notify_when: NotifyWhen = "always"
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class ChatworkNotifier:
    """Posts one summary message per run to a Chatwork room (a :class:`kibertas_async.Notifier`)."""

    name = NOTIFIER_NAME

    def __init__(self, settings: ChatworkSettings, *, sleep: Sleep | None = None) -> None:
        self.settings = settings
        self._sleep = sleep

    async def notify(self, report: RunReport) -> None:
        """Post the summary of ``report``; delivery problems are logged as ``notifier.failed``, not raised."""
        settings = self.settings
        log = get_logger(run_id=report.run_id, notifier=self.name, room_id=settings.room_id)
        if settings.notify_when == "failure" and report.ok:
            log.info("notifier.skipped", reason="the run is OK and chatwork-notify is 'failure'")
            return
        delivery = await post_message(
            api_url=settings.api_url,
            room_id=settings.room_id,
            token=settings.token,
            body=format_message(report),
            policy=settings.retry,
            sleep=self._sleep,
        )
        if delivery.delivered:
            log.info("notifier.posted", message_id=delivery.message_id, attempts=delivery.attempts)
        else:
            log.error("notifier.failed", status=delivery.status, reason=delivery.reason, attempts=delivery.attempts)


@hookimpl
def kibertas_async_register_options() -> list[Option[Any]]:
    """The Chatwork options (all run-wide)."""
    return list(CHATWORK_OPTIONS)


@hookimpl
def kibertas_async_register_notifiers(options: OptionValues) -> list[Notifier]:
    """The Chatwork notifier when both a token and a room are set; nothing when neither is.

    Only one of the two set never gets here through the command line: each option ``requires`` the
    other, so half a configuration is bad input (exit code 2) before the run starts.
    """
    token, room_id = options[API_TOKEN], options[ROOM_ID]
    if not token or not room_id:
        return []
    settings = ChatworkSettings(
        token=token,
        room_id=room_id,
        api_url=options[API_URL],
        notify_when=options[NOTIFY_WHEN],
        retry=RetryPolicy(max_attempts=options[MAX_ATTEMPTS]),
    )
    return [ChatworkNotifier(settings)]
