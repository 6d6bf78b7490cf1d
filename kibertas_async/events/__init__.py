"""The structured event stream (structlog): JSON lines for machines, a readable view on a terminal.

Every event carries what applies of: ``run_id``, ``cluster``, ``check``, ``step``, ``event``,
``outcome``, ``duration``. Standard-library loggers of dependencies go through the same stream.
Secrets (secret option values, kubeconfig credentials, cloud and SaaS keys from the environment) are
replaced by ``<redacted>`` wherever they appear in an event, tracebacks included.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

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
    "Logger",
    "SecretRedactor",
    "configure_logging",
    "environment_secrets",
    "get_logger",
]


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
            # Redact once more as the very last step before rendering: whatever a processor added is covered.
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, REDACTOR, renderer],
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
