"""Where the shards of a run put their reports, and where ``report merge`` finds them: a directory
(``--report-dir``, e.g. a shared volume) or an S3 prefix (``--report-s3 s3://bucket/prefix/``).

A shard's report is named after the run and the shard, ``<run-id>.shard-<I>-of-<N>.json``, so shards
of one run never overwrite each other and the merge can tell which are missing from the names alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from kibertas_async.errors import KibertasError, UsageError
from kibertas_async.shards import Shard

_REPORT_NAME = re.compile(r"(?P<run_id>[a-z0-9][-a-z0-9_.]*?)\.shard-(?P<index>[0-9]+)-of-(?P<count>[0-9]+)\.json")


class ReportStoreError(KibertasError):
    """A report could not be written, listed or read; the message says where and why."""


def report_name(run_id: str, shard: Shard) -> str:
    """``<run-id>.shard-<I>-of-<N>.json``."""
    return f"{run_id}.shard-{shard.index}-of-{shard.count}.json"


@dataclass(frozen=True)
class StoredReport:
    """One shard report found in a store, known by its name."""

    name: str
    run_id: str
    shard: Shard


def parse_report_name(name: str) -> StoredReport | None:
    """The run and shard a report's name says, or ``None`` for any other file."""
    match = _REPORT_NAME.fullmatch(name)
    if match is None:
        return None
    index, count = int(match.group("index")), int(match.group("count"))
    if not 1 <= index <= count:
        return None
    return StoredReport(name, match.group("run_id"), Shard(index, count))


class ReportStore(Protocol):
    """A place holding shard reports by name."""

    location: str
    """For people: the directory or the ``s3://`` prefix."""

    async def put(self, name: str, data: bytes) -> None:
        """Store ``data`` as ``name``, whole or not at all. :raises ReportStoreError:"""
        ...

    async def names(self) -> list[str]:
        """The names of everything stored here. :raises ReportStoreError:"""
        ...

    async def get(self, name: str) -> bytes:
        """The bytes stored as ``name``. :raises ReportStoreError:"""
        ...


class DirectoryStore:
    """Reports as files in a directory that exists already (a shared volume, a CI workspace)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)

    async def put(self, name: str, data: bytes) -> None:
        """Write the file atomically: a merge never reads half a report."""
        target = anyio.Path(self.path / name)
        temporary = target.with_name(f".{name}.tmp")
        try:
            await temporary.write_bytes(data)
            await temporary.replace(target)
        except OSError as error:
            raise ReportStoreError(f"cannot write {target}: {error.strerror or error}") from None

    async def names(self) -> list[str]:
        """The file names in the directory."""
        try:
            return sorted([entry.name async for entry in anyio.Path(self.path).iterdir()])
        except OSError as error:
            raise ReportStoreError(f"cannot list {self.path}: {error.strerror or error}") from None

    async def get(self, name: str) -> bytes:
        """The file's bytes."""
        try:
            return await anyio.Path(self.path / name).read_bytes()
        except OSError as error:
            raise ReportStoreError(f"cannot read {self.path / name}: {error.strerror or error}") from None


class S3Store:
    """Reports as objects under an S3 prefix (through :mod:`kibertas_async.reports._s3`)."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.location = f"s3://{bucket}/{prefix}"

    async def put(self, name: str, data: bytes) -> None:
        """One PUT: S3 stores an object whole or not at all."""
        from kibertas_async.reports import _s3 as s3

        try:
            await s3.put_object(self.bucket, self.prefix + name, data)
        except s3.S3Error as error:
            raise ReportStoreError(str(error)) from None

    async def names(self) -> list[str]:
        """The keys directly under the prefix, without it."""
        from kibertas_async.reports import _s3 as s3

        try:
            keys = await s3.list_keys(self.bucket, self.prefix)
        except s3.S3Error as error:
            raise ReportStoreError(str(error)) from None
        return sorted(key[len(self.prefix) :] for key in keys if "/" not in key[len(self.prefix) :])

    async def get(self, name: str) -> bytes:
        """The object's bytes."""
        from kibertas_async.reports import _s3 as s3

        try:
            return await s3.get_object(self.bucket, self.prefix + name)
        except s3.S3Error as error:
            raise ReportStoreError(str(error)) from None


_S3_URL = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?")


def s3_store(url: str, *, source: str) -> S3Store:
    """``s3://bucket/prefix/`` (a prefix without a trailing ``/`` is taken as a folder all the same).

    :raises UsageError: not such a URL, or aioboto3 is not installed.
    """
    from kibertas_async.reports._s3 import require_aioboto3

    match = _S3_URL.fullmatch(url.strip())
    if match is None:
        raise UsageError(
            f"{source} {url!r} is not s3://BUCKET/PREFIX/ (a bucket is lower-case letters, digits, '.', '-')"
        )
    prefix = (match.group("prefix") or "").lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    require_aioboto3(source)
    return S3Store(match.group("bucket"), prefix)


def directory_store(path: str, *, source: str) -> DirectoryStore:
    """A directory that exists.

    :raises UsageError: the path is empty, missing or not a directory.
    """
    if not path.strip():
        raise UsageError(f"{source} is empty; give a directory, or leave it out")
    directory = Path(path)
    if not directory.is_dir():
        raise UsageError(f"{source} {path}: no such directory (create it, or mount the shared volume there)")
    return DirectoryStore(directory)


def open_store(location: str, *, source: str) -> ReportStore:
    """``s3://...`` is an :class:`S3Store`, anything else a :class:`DirectoryStore`.

    :raises UsageError: as :func:`s3_store` and :func:`directory_store` do.
    """
    if location.strip().startswith("s3:"):
        return s3_store(location, source=source)
    return directory_store(location, source=source)
