"""The structured event stream (structlog): JSON lines for machines, a readable view on a terminal.

Every event carries what applies of: ``run_id``, ``cluster``, ``check``, ``step``, ``event``,
``outcome``, ``duration``. Standard-library loggers of dependencies go through the same stream.
Secret option values are replaced by ``<redacted>`` wherever they appear in an event.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import IO, Any

Logger = Any
"""A structlog bound logger (typed loosely so this module stays cheap to import)."""

LEVELS = ("debug", "info", "warning", "error")


class SecretRedactor:
    """A structlog processor that blanks known secret values in every string of an event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: set[str] = {secret for secret in secrets if len(secret) >= 4}

    def add(self, values: Iterable[str]) -> None:
        """Learn more secrets (options are resolved after logging starts)."""
        self.secrets.update(value for value in values if len(value) >= 4)

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self.secrets:
            return event
        for key, value in event.items():
            event[key] = self._redact(value)
        return event

    def _redact(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                if secret in value:
                    value = value.replace(secret, "<redacted>")
            return value
        if isinstance(value, dict):
            return {key: self._redact(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._redact(item) for item in value]
        return value


REDACTOR = SecretRedactor()
"""The process-wide redactor; the engine feeds it every secret option value."""


def configure_logging(*, log_format: str = "auto", level: str = "info", stream: IO[str] | None = None) -> None:
    """Set up structlog and route the standard library's logging through it.

    ``log_format``: ``json``, ``console``, or ``auto`` (console on a terminal, JSON otherwise).
    """
    import structlog

    out = stream if stream is not None else sys.stderr
    if log_format == "auto":
        log_format = "console" if out.isatty() else "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        REDACTOR,
    ]
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty(), sort_keys=False)
    numeric_level = getattr(logging, level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # Third-party libraries are chatty at debug level; keep them one notch quieter than ours.
    for noisy in ("asyncio", "aiohttp", "kubernetes_asyncio", "botocore", "aiobotocore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.INFO))


def get_logger(**bound: Any) -> Logger:
    """A structlog logger with ``bound`` values."""
    import structlog

    return structlog.get_logger("kibertas_async").bind(**bound)
