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
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import IO, Any, Protocol

from kibertas_async.events.redaction import REDACTED, SecretRedactor, environment_secrets

Logger = Any
"""A structlog bound logger (typed loosely so this module stays cheap to import)."""

LEVELS = ("debug", "info", "warning", "error")


class EventRedaction:
    """The event stream's redaction step (a structlog processor, before the board and the renderer).

    Secrets are run-scoped: each run (:class:`~kibertas_async.engine.Engine`) keeps its own
    :class:`SecretRedactor`, fed every secret it may meet before anything is logged, and has it
    :meth:`cover` the stream for as long as the run object lives (a weak reference: a finished run's
    secrets leave with it). An event is redacted with every live run's redactor, each of which has also
    learnt the secret environment variables read by :func:`configure_logging`; with no run alive
    (start-up, other commands), with those variables alone.
    """

    def __init__(self) -> None:
        self._runs: weakref.WeakSet[SecretRedactor] = weakref.WeakSet()
        self._environment_secrets: list[str] = []
        self._environment = SecretRedactor()

    def cover(self, redactor: SecretRedactor) -> None:
        """Redact every event with ``redactor`` too, while it lives; it learns the environment's secrets
        (one redactor then covers an event whole: one pass)."""
        redactor.add(self._environment_secrets)
        self._runs.add(redactor)

    def read_environment(self, environ: Mapping[str, str]) -> None:
        """Learn the secrets of ``environ``'s secret variables: redacted always, with or without a run."""
        self._environment_secrets = environment_secrets(environ)
        self._environment = SecretRedactor(self._environment_secrets)
        for redactor in list(self._runs):
            redactor.add(self._environment_secrets)

    def text(self, value: str) -> str:
        """``value`` with the secrets of every live run and of the environment blanked (an error line
        printed outside the event stream)."""
        for redactor in [*self._runs, self._environment]:
            value = redactor.text(value)
        return value

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for redactor in list(self._runs) or [self._environment]:
            event = redactor(logger, method, event)
        return event


EVENT_REDACTION = EventRedaction()
"""The one redaction step of the event stream; runs register their redactors with it."""

__all__ = [
    "EVENT_REDACTION",
    "LEVELS",
    "REDACTED",
    "EventBoard",
    "EventRedaction",
    "Logger",
    "SecretRedactor",
    "bind_context",
    "choose_log_format",
    "configure_logging",
    "environment_secrets",
    "get_logger",
    "run_view",
    "unbind_context",
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
    """Set up structlog, and route the standard library's logging to the same place.

    ``log_format``: ``json``, ``console``, or ``auto`` (console on a terminal, JSON otherwise); ``live``
    is console lines unless a ``board`` is given. With a board, every event of ours reaches it, debug
    ones included (``step.progress`` is the board's "last seen"), and only those at ``level`` and at
    least warnings are printed, as console lines, through the board.

    Our own events are rendered by structlog itself and written straight to the stream (one line, one
    write): going through the standard library's ``logging`` machinery as well cost a run about a third
    of its CPU at a thousand checks. Dependencies' standard-library loggers get the same processors
    (context, level, time, tracebacks as text, redaction) and renderer through a ``logging`` handler.
    """
    structlog = _structlog()

    out = stream if stream is not None else sys.stderr
    if log_format == "auto":
        log_format = "console" if out.isatty() else "json"
    EVENT_REDACTION.read_environment(os.environ)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Tracebacks become text here, before redaction: a secret inside an exception message (an HTTP
        # error quoting a URL with a key) is then blanked like any other text.
        structlog.processors.format_exc_info,
        # Redaction comes last before the board and the renderer: whatever a processor added is covered.
        EVENT_REDACTION,
    ]
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty(), sort_keys=False)
    numeric_level = getattr(logging, level.upper())
    sink = _LineSink(out, board, max(numeric_level, logging.WARNING) if board is not None else logging.NOTSET)
    observe = [sink.observe] if board is not None else []
    # With a board, our own events pass at every level (the sink decides what is printed); the
    # dependencies' loggers stay at ``level`` through the root logger's level.
    our_level = logging.DEBUG if board is not None else numeric_level
    structlog.configure(
        processors=[*shared, *observe, renderer],
        logger_factory=lambda *_args: _LineLogger(sink),
        wrapper_class=structlog.make_filtering_bound_logger(our_level),
        cache_logger_on_first_use=False,
    )
    handler = _ForeignHandler(sink)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *observe, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # Third-party libraries are chatty at debug level; keep them one notch quieter than ours.
    for noisy in ("asyncio", "aiohttp", "kubernetes_asyncio", "botocore", "aiobotocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.INFO))


_LEVEL_NUMBERS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


class _LineSink:
    """Where rendered lines go: the stream, or (with a board) the board, which sees every event and
    prints only those at ``print_level`` or above as lines beside it. Writes are serialized, so a line
    from a worker thread never interleaves with another, and a stream that fails loses the line only."""

    def __init__(self, out: IO[str], board: EventBoard | None, print_level: int) -> None:
        self._out = out
        self._board = board
        self._print_level = print_level
        self._lock = threading.Lock()

    def observe(self, _logger: Any, _method: str, event: Any) -> Any:
        """The processor before the renderer: the board sees the event, secrets already blanked."""
        if self._board is not None:
            self._board.observe(event)
        return event

    def write(self, line: str, level: int) -> None:
        if level < self._print_level:
            return
        with self._lock:
            try:
                if self._board is not None:
                    self._board.print_line(line)
                else:
                    self._out.write(line + "\n")
                    self._out.flush()
            except (OSError, ValueError):
                # A closed or broken stream (stderr piped into a `head` that exited) loses the line, as a
                # logging handler would; it never fails the code that logged.
                pass


class _LineLogger:
    """structlog's logger for our events: hands each rendered line and its level to the sink."""

    def __init__(self, sink: _LineSink) -> None:
        self._sink = sink

    def __getattr__(self, method: str) -> Callable[[str], None]:
        level = _LEVEL_NUMBERS.get(method, logging.INFO)
        return lambda line: self._sink.write(line, level)


class _ForeignHandler(logging.Handler):
    """The standard library's records (dependencies, the sandbox's helpers), rendered like our events."""

    def __init__(self, sink: _LineSink) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sink.write(self.format(record), record.levelno)
        except Exception:
            self.handleError(record)


def _structlog() -> Any:
    """The structlog module, imported without rich the first time (about 60 ms of CPU less per process).

    ``structlog.dev`` imports rich's traceback and pretty-printing modules, when rich is installed (it is,
    for the live board), only to format exceptions inside ``ConsoleRenderer``. Our processors turn
    exceptions into text before any renderer sees them (``format_exc_info``, so that redaction covers
    tracebacks), so that formatter never runs; structlog is therefore imported as if rich were absent, and
    rich stays importable for the board afterwards.
    """
    if "structlog" in sys.modules:
        return sys.modules["structlog"]
    hidden = "rich" not in sys.modules
    if hidden:
        sys.modules["rich"] = None  # type: ignore[assignment]  # makes `import rich` raise ImportError
    try:
        import structlog
    finally:
        if hidden:
            del sys.modules["rich"]
    return structlog


def bind_context(**values: Any) -> Mapping[str, Any]:
    """Add ``values`` (``run_id``, ``cluster``, ``check``, ``step``) to every event logged from now on in
    this task and in the tasks it starts, through any logger: ours, a plugin's own
    ``structlog.get_logger()``, a library's standard-library logger. Returns what :func:`unbind_context`
    needs to take them back (a task's bindings end with the task anyway: each task has its own context).
    """
    tokens: Mapping[str, Any] = _structlog().contextvars.bind_contextvars(**values)
    return tokens


def unbind_context(tokens: Mapping[str, Any]) -> None:
    """Undo one :func:`bind_context` (the values bound before it come back)."""
    _structlog().contextvars.reset_contextvars(**tokens)


def get_logger(**bound: Any) -> Logger:
    """A structlog logger with ``bound`` values."""
    return _structlog().get_logger("kibertas_async").bind(**bound)
