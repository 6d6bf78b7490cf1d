"""Sharding: one run's (cluster x check) matrix split over N processes, e.g. the pods of an Indexed Job.

``run --shard I/N`` (or ``JOB_COMPLETION_INDEX`` and ``KIBERTAS_ASYNC_SHARDS`` in an Indexed Job) runs
shard I's share (:func:`assign_shards`) and writes its report to ``--report-dir`` or ``--report-s3``;
``report merge`` (:mod:`kibertas_async.reports`) combines the shards' reports into one, with one message.
See docs/sharding.md.
"""

from kibertas_async.shards._assignment import (
    JOB_INDEX_ENV,
    SHARD_COUNT_ENV,
    Cell,
    Shard,
    assign_shards,
    parse_shard,
    requested_shard,
    shard_from_environment,
)

__all__ = [
    "JOB_INDEX_ENV",
    "SHARD_COUNT_ENV",
    "Cell",
    "Shard",
    "assign_shards",
    "parse_shard",
    "requested_shard",
    "shard_from_environment",
]
