"""The engine's own options, registered as an ordinary (built-in) plugin."""

from __future__ import annotations

from typing import Any

from kibertas_async._markers import hookimpl
from kibertas_async.options import Option, optional, parse_bool, parse_duration, parse_positive_int

CONCURRENCY = Option[int](
    "concurrency",
    "How many checks may run at once in the whole run (the default runs every built-in check on ten clusters "
    "at once; more clusters queue, or shard them).",
    default=64,
    parse=parse_positive_int,
    per_cluster=False,
    metavar="N",
)
CLUSTER_CONCURRENCY = Option[int](
    "cluster-concurrency",
    "How many checks may run at once on one cluster.",
    default=8,
    parse=parse_positive_int,
    per_cluster=False,
    metavar="N",
)
CHECK_TIMEOUT = Option[float | None](
    "check-timeout",
    "Time limit of each check, cleanup not included (e.g. 10m); default: each check's own.",
    default=None,
    parse=optional(parse_duration),
    metavar="DURATION",
)
RUN_TIMEOUT = Option[float](
    "run-timeout",
    "Time limit of the whole run; checks still running then end as TIMEOUT and are cleaned up.",
    default=3600.0,
    parse=parse_duration,
    per_cluster=False,
    metavar="DURATION",
)
CLEANUP_TIMEOUT = Option[float](
    "cleanup-timeout",
    "Time limit of each cleanup action (e.g. deleting a namespace and waiting until it is gone).",
    default=120.0,
    parse=parse_duration,
    per_cluster=False,
    metavar="DURATION",
)
CONNECT_TIMEOUT = Option[float](
    "connect-timeout",
    "How long to wait for a cluster's API server to answer before its checks are ERROR.",
    default=15.0,
    parse=parse_duration,
    per_cluster=False,
    metavar="DURATION",
)
NOTIFY_TIMEOUT = Option[float](
    "notify-timeout",
    "Time limit of each notifier (retries included) at the end of the run.",
    default=60.0,
    parse=parse_duration,
    per_cluster=False,
    metavar="DURATION",
)
KEEP = Option[bool](
    "keep",
    "Leave everything the checks created in place, for debugging (the reference tool's --debug).",
    default=False,
    parse=parse_bool,
    per_cluster=False,
)

ENGINE_OPTIONS: tuple[Option[Any], ...] = (
    CONCURRENCY,
    CLUSTER_CONCURRENCY,
    CHECK_TIMEOUT,
    RUN_TIMEOUT,
    CLEANUP_TIMEOUT,
    CONNECT_TIMEOUT,
    NOTIFY_TIMEOUT,
    KEEP,
)


@hookimpl
def kibertas_async_register_options() -> list[Option[Any]]:
    """The engine's options."""
    return list(ENGINE_OPTIONS)
