"""Which shard runs which (cluster, check) pairs: a pure, deterministic function of the matrix.

Every pod of an Indexed Job computes the whole assignment on its own and runs its share, so the
assignment may depend on nothing but the clusters, the checks and N. It is made of *units*: a check on
a cluster, or every check of one ``exclusive`` group on a cluster together (those never run at the
same time on one cluster, so they must be in one process to be kept apart). Units are laid out cluster
by cluster (clusters and checks sorted by name, so the order they are given in does not matter) and
cut into N contiguous runs of about equal size: shard sizes differ by at most the largest unit, and
each shard connects to about 1/N of the clusters rather than to all of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kibertas_async.errors import UsageError

if TYPE_CHECKING:
    from kibertas_async.checks import Check

Cell = tuple[str, str]
"""One (cluster, check) pair of the matrix."""

SHARD_COUNT_ENV = "KIBERTAS_ASYNC_SHARDS"
"""How many shards (the Indexed Job's ``completions``): the Job manifest sets it."""
JOB_INDEX_ENV = "JOB_COMPLETION_INDEX"
"""Set by Kubernetes in every pod of an Indexed Job: 0 to completions - 1."""

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``, numbered from 1 (``--shard 2/3``)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, *, source: str = "--shard") -> Shard:
    """``I/N`` with 1 <= I <= N.

    :raises UsageError: anything else, saying what is wrong.
    """
    match = _SHARD.fullmatch(text)
    if match is None:
        raise UsageError(f"{source} {text!r} is not I/N (shard I of N, e.g. 2/3)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise UsageError(f"{source} {text!r}: N must be at least 1")
    if not 1 <= index <= count:
        raise UsageError(f"{source} {text!r}: shards are numbered 1 to {count}")
    return Shard(index, count)


def shard_from_environment(environ: Mapping[str, str]) -> Shard | None:
    """The shard of this pod of an Indexed Job: ``JOB_COMPLETION_INDEX`` (from 0) + 1 of
    ``KIBERTAS_ASYNC_SHARDS``; ``None`` when neither is set.

    :raises UsageError: only one of the two is set, or either is not a number in range.
    """
    index_text, count_text = environ.get(JOB_INDEX_ENV), environ.get(SHARD_COUNT_ENV)
    if index_text is None and count_text is None:
        return None
    if count_text is None:
        raise UsageError(
            f"{JOB_INDEX_ENV}={index_text} is set but {SHARD_COUNT_ENV} is not: set it to the Job's "
            "completions, or give --shard I/N"
        )
    if index_text is None:
        raise UsageError(f"{SHARD_COUNT_ENV}={count_text} is set but {JOB_INDEX_ENV} is not: give --shard I/N")
    if not count_text.strip().isdigit() or int(count_text) < 1:
        raise UsageError(f"{SHARD_COUNT_ENV}={count_text!r} is not a whole number of at least 1")
    if not index_text.strip().isdigit():
        raise UsageError(f"{JOB_INDEX_ENV}={index_text!r} is not a whole number")
    index, count = int(index_text), int(count_text)
    if index >= count:
        raise UsageError(f"{JOB_INDEX_ENV}={index} is out of range for {SHARD_COUNT_ENV}={count} (0 to {count - 1})")
    return Shard(index + 1, count)


def requested_shard(flag: str | None, environ: Mapping[str, str]) -> Shard | None:
    """``--shard`` when given, else the Indexed Job's environment, else ``None`` (not sharded).

    The environment is checked even when the flag is given, so a broken Job manifest is never hidden.
    """
    from_environment = shard_from_environment(environ)
    if flag is not None:
        return parse_shard(flag)
    return from_environment


def assign_shards(clusters: Sequence[str], checks: Sequence[type[Check]], count: int) -> tuple[tuple[Cell, ...], ...]:
    """Every shard's cells, shard 1 first: contiguous, balanced, exclusive groups kept whole.

    :param clusters: cluster names (order does not matter).
    :param checks: the checks to run on every cluster (order does not matter).
    :param count: N, at least 1.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    units: list[list[Cell]] = []
    ordered_checks = sorted(checks, key=lambda check: check.name)
    for cluster in sorted(clusters):
        groups: dict[str, list[Cell]] = {}
        for check in ordered_checks:
            cell = (cluster, check.name)
            if check.exclusive is None:
                units.append([cell])
            elif check.exclusive in groups:
                groups[check.exclusive].append(cell)
            else:
                groups[check.exclusive] = [cell]
                units.append(groups[check.exclusive])
    total = sum(len(unit) for unit in units)
    shards: list[list[Cell]] = [[] for _ in range(count)]
    before = 0
    for unit in units:
        # The shard whose stretch of [0, total) holds the unit's middle: integer arithmetic, so every
        # pod computes the same cut whatever its floating point.
        shards[count * (2 * before + len(unit)) // (2 * total)].extend(unit)
        before += len(unit)
    return tuple(tuple(cells) for cells in shards)
