"""The structured event stream (structlog): JSON lines for machines, a readable view on a terminal.

Every event carries what applies of: ``run_id``, ``cluster``, ``check``, ``step``, ``event``,
``outcome``, ``duration``. Standard-library loggers of dependencies go through the same stream.
Secrets (secret option values, kubeconfig credentials, cloud and SaaS keys from the environment) are
replaced by ``<redacted>`` wherever they appear in an event, tracebacks included.

Four formats (``--log-format``): ``json`` (one JSON object a line), ``console`` (structlog's readable
lines), ``live`` (``run`` only: the board of :mod:`kibertas_async.events.board`, redrawn in place, with
warnings and errors as lines above it; other commands show console lines), and ``auto``: JSON lines off a
terminal; on one, the live board for ``run`` unless the terminal cannot redraw (``TERM=dumb``) or belongs
to a CI job (``$CI`` true), where console lines read better; console lines for the other commands.
``NO_COLOR`` takes the colour out of the console lines and the board alike, nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from typing import IO, Any, Protocol

from kibertas_async.events.redaction import REDACTED, SecretRedactor, environment_secrets

Logger = Any
"""A structlog bound logger (typed loosely so this module stays cheap to import)."""

LEVELS = ("debug", "info", "warning", "error")


REDACTOR = SecretRedactor()
"""The process-wide redactor; the engine feeds it every secret it knows of before the first check."""

__all__ = [
    "LEVELS",
    "REDACTED",
    "REDACTOR",
    "EventBoard",
    "Logger",
    "SecretRedactor",
    "choose_log_format",
    "configure_logging",
    "environment_secrets",
    "get_logger",
    "run_view",
]


class EventBoard(Protocol):
    """Where the events go instead of a stream when a board shows them
    (:class:`~kibertas_async.events.board.LiveBoard`)."""

    def observe(self, event: Mapping[str, Any]) -> None:
        """Take in one event (redacted), whatever its level: the board shows what it says."""
        ...

    def print_line(self, line: str) -> None:
        """Print one rendered event (a warning or an error) as a line beside the board."""
        ...


def choose_log_format(requested: str, stream: IO[str], environ: Mapping[str, str]) -> str:
    """What ``--log-format requested`` means for a ``run`` writing its events to ``stream``: ``auto`` is
    ``json`` off a terminal, else ``live``, or ``console`` where a board does not belong (``TERM=dumb``,
    ``$CI`` true); any other format is itself."""
    if requested != "auto":
        return requested
    if not stream.isatty():
        return "json"
    if environ.get("TERM", "").strip().lower() == "dumb" or _true(environ.get("CI", "")):
        return "console"
    return "live"


def _true(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@contextlib.contextmanager
def run_view(
    log_format: str,
    *,
    level: str,
    plugins: Any,
    stream: IO[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """The event stream of one ``run``, for the ``with`` block that runs it; yields the chosen format.

    For the live board, the board is registered with the plugin manager ``plugins`` (its hooks say which
    checks run, how each ended, and when the run is over: the board then stops, before the summary table
    prints) and always stopped on the way out, exception or not, so the terminal gets its cursor back.
    """
    out = stream if stream is not None else sys.stderr
    chosen = choose_log_format(log_format, out, os.environ if environ is None else environ)
    if chosen != "live":
        configure_logging(log_format=chosen, level=level, stream=out)
        yield chosen
        return
    from kibertas_async.events.board import LiveBoard

    board = LiveBoard(out)
    configure_logging(log_format=chosen, level=level, stream=out, board=board)
    plugins.register(board, name=LiveBoard.plugin_name)
    try:
        with board:
            yield chosen
    finally:
        plugins.unregister(board)


def configure_logging(
    *,
    log_format: str = "auto",
    level: str = "info",
    stream: IO[str] | None = None,
    board: EventBoard | None = None,
) -> None:
    """Set up structlog and route the standard library's logging through it.

    ``log_format``: ``json``, ``console``, or ``auto`` (console on a terminal, JSON otherwise); ``live``
    is console lines unless a ``board`` is given. With a board, every event of ours reaches it, debug
    ones included (``step.progress`` is the board's "last seen"), and only those at ``level`` and at
    least warnings are printed, as console lines, through the board.
    """
    import structlog

    out = stream if stream is not None else sys.stderr
    if log_format == "auto":
        log_format = "console" if out.isatty() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks become text here, before redaction: a secret inside an exception message (an HTTP
        # error quoting a URL with a key) is then blanked like any other text.
        structlog.processors.format_exc_info,
        REDACTOR,
    ]
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty(), sort_keys=False)
    numeric_level = getattr(logging, level.upper())
    # With a board, our own events pass at every level (the handler decides what is printed); the
    # dependencies' loggers stay at ``level`` through the root logger's level.
    our_level = logging.DEBUG if board is not None else numeric_level
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(our_level),
        cache_logger_on_first_use=False,
    )
    # Redact once more as the very last step before rendering: whatever a processor added is covered.
    last: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta, REDACTOR]
    handler: logging.Handler
    if board is None:
        handler = logging.StreamHandler(out)
    else:
        handler = _BoardHandler(board, max(numeric_level, logging.WARNING))
        last.append(handler.feed)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=[*last, renderer]))
    logging.getLogger("kibertas_async").setLevel(logging.DEBUG if board is not None else logging.NOTSET)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # Third-party libraries are chatty at debug level; keep them one notch quieter than ours.
    for noisy in ("asyncio", "aiohttp", "kubernetes_asyncio", "botocore", "aiobotocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.INFO))


class _BoardHandler(logging.Handler):
    """Hands every event to a board (:meth:`feed`, a processor of its formatter's chain, after
    redaction) and prints those at ``print_level`` or above through it as console lines."""

    def __init__(self, board: EventBoard, print_level: int) -> None:
        super().__init__()
        self._board = board
        self._print_level = print_level

    def feed(self, _logger: Any, _method: str, event: Any) -> Any:
        """The processor: the board sees the event as rendered, secrets already blanked."""
        self._board.observe(event)
        return event

    def emit(self, record: logging.LogRecord) -> None:
        """Feed the board; print the line if the record is important enough."""
        try:
            line = self.format(record)
            if record.levelno >= self._print_level:
                self._board.print_line(line)
        except Exception:
            self.handleError(record)


def get_logger(**bound: Any) -> Logger:
    """A structlog logger with ``bound`` values."""
    import structlog

    return structlog.get_logger("kibertas_async").bind(**bound)
