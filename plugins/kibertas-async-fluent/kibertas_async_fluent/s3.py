"""The one module that talks to ``aioboto3``: list a log prefix (all pages) and read objects.

``aioboto3`` and ``botocore`` are imported when a :class:`LogBucket` is made (the check runs), never by
``kibertas-async list`` or ``--help``. Above it, the check
sees :class:`LogObject` and three errors: :class:`BucketMissing` and :class:`S3Denied` (permanent: the
check fails at once) and :class:`S3Unavailable` (temporary: the check polls again).

Credentials: explicit keys when given, otherwise the AWS default chain (environment, shared files, web
identity / IRSA, container and instance metadata), exactly as the AWS SDKs resolve them.

Every :class:`LogBucket` of one event loop makes its client from one shared ``aioboto3.Session`` (keys and
region are the client's own), so botocore builds its event hooks and loads the S3 model and the
endpoint rules once per run rather than once per cluster (``tests/test_s3_session.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import weakref
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import anyio

GZIP_MAGIC = b"\x1f\x8b"
REQUEST_TIMEOUT = 45.0
"""botocore's own connect (10 s) and read (30 s) timeouts, and a margin: the hard upper bound."""
_DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
)


@dataclass(frozen=True)
class LogObject:
    """One object of a listing."""

    key: str
    last_modified: datetime
    size: int
    etag: str


class BucketMissing(Exception):
    """The bucket does not exist (``NoSuchBucket``)."""


class S3Denied(Exception):
    """S3 refused our credentials, or there are none."""


class S3Unavailable(Exception):
    """This request failed, the next may not (network, throttling, 5xx)."""


@dataclass(frozen=True)
class S3Settings:
    """Where the bucket is and how to reach it."""

    bucket: str
    endpoint_url: str = ""
    """Empty: AWS's own endpoint for the region."""
    region: str = ""
    """Empty: from the AWS configuration chain."""
    path_style: bool = False
    access_key_id: str = ""
    """Empty: the AWS default credential chain."""
    secret_access_key: str = ""
    request_timeout: float = REQUEST_TIMEOUT
    """The most one request (one listing page, one object read, the client's close) may take, its
    shield from outside cancellation included: a shield always comes with a deadline."""


_SESSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def shared_session() -> Any:
    """The running event loop's ``aioboto3.Session``, made on first use.

    One per loop, not per process: a session's refreshable credentials (web identity, instance metadata)
    hold asyncio locks, which belong to the loop they were first used in.
    """
    import aioboto3

    loop = asyncio.get_running_loop()
    session = _SESSIONS.get(loop)
    if session is None:
        session = _SESSIONS[loop] = aioboto3.Session()
    return session


class LogBucket:
    """An open S3 client bound to one bucket. Made inside the event loop (its session is the loop's)."""

    def __init__(self, settings: S3Settings) -> None:
        from botocore.config import Config  # type: ignore[import-untyped]

        self.settings = settings
        config = Config(
            s3={"addressing_style": "path" if settings.path_style else "auto"},
            # Our polling retries; botocore's own retries would only hide slowness within one attempt.
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=10,
            read_timeout=30,
        )
        self._client_context: Any = shared_session().client(
            "s3",
            endpoint_url=settings.endpoint_url or None,
            region_name=settings.region or None,
            aws_access_key_id=settings.access_key_id or None,
            aws_secret_access_key=settings.secret_access_key or None,
            config=config,
        )
        self._client: Any = None

    async def __aenter__(self) -> LogBucket:
        self._client = await self._client_context.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with anyio.move_on_after(self.settings.request_timeout, shield=True):
            await self._client_context.__aexit__(exc_type, exc, tb)

    async def check_access(self) -> None:
        """Prove the bucket exists and our credentials may list it (one key at most is asked for).

        :raises BucketMissing: ``NoSuchBucket``.
        :raises S3Denied: credentials refused or missing.
        :raises S3Unavailable: anything else that went wrong this time.
        """
        with _mapped_errors(self.settings.bucket), self._not_cancelled_midway():
            await self._client.list_objects_v2(Bucket=self.settings.bucket, MaxKeys=1)

    async def list(self, prefix: str) -> list[LogObject]:
        """Every object under ``prefix``, all pages.

        :raises BucketMissing: ``NoSuchBucket``.
        :raises S3Denied: credentials refused or missing.
        :raises S3Unavailable: anything else that went wrong this time.
        """
        found: list[LogObject] = []
        query: dict[str, str] = {"Bucket": self.settings.bucket, "Prefix": prefix}
        while True:
            # Page by page, each request shielded and bounded on its own (not the whole listing at once).
            with _mapped_errors(self.settings.bucket), self._not_cancelled_midway():
                page = await self._client.list_objects_v2(**query)
            for item in page.get("Contents", []):
                found.append(
                    LogObject(item["Key"], item["LastModified"], int(item.get("Size", 0)), item.get("ETag", ""))
                )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found
            query["ContinuationToken"] = token

    async def read(self, key: str) -> bytes | None:
        """The object's bytes, or ``None`` if it is gone (a lifecycle rule may remove objects at any time)."""
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        try:
            with _mapped_errors(self.settings.bucket), self._not_cancelled_midway():
                response = await self._client.get_object(Bucket=self.settings.bucket, Key=key)
                async with response["Body"] as body:
                    data: bytes = await body.read()
        except S3Unavailable as error:
            if isinstance(error.__cause__, ClientError) and _error_code(error.__cause__) == "NoSuchKey":
                return None
            raise
        return data

    @contextlib.contextmanager
    def _not_cancelled_midway(self) -> Iterator[None]:
        """Shield one request from outside cancellation (a step deadline, a signal): aiobotocore leaks the
        connection of a request cancelled midway. The cancellation is delivered right after it. The
        shield has its own deadline, so a server that never answers cannot hold the check (or its
        cleanup, or a signal) for longer than ``request_timeout``: that is :class:`S3Unavailable`."""
        limit = self.settings.request_timeout
        try:
            with anyio.fail_after(limit, shield=True):
                yield
        except TimeoutError:
            raise S3Unavailable(f"S3 did not answer within {limit:g}s") from None


def contains_marker(data: bytes, marker: str) -> bool:
    """Whether an object's content holds ``marker``: gzip (fluentd's default) is decompressed, plain text as is."""
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return False
    return marker.encode() in data


@contextlib.contextmanager
def _mapped_errors(bucket: str) -> Iterator[None]:
    """Turns botocore's errors into the three this module documents."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

    try:
        yield
    except ClientError as error:
        code = _error_code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "NoSuchBucket":
            raise BucketMissing(f"bucket {bucket} does not exist (NoSuchBucket)") from error
        if code in _DENIED_CODES or status == 403:
            raise S3Denied(f"S3 refused the credentials for bucket {bucket} ({code or status})") from error
        message = error.response.get("Error", {}).get("Message", "")
        raise S3Unavailable(f"{code or f'HTTP {status}'}: {message}") from error
    except (NoCredentialsError, PartialCredentialsError) as error:
        raise S3Denied(f"no usable AWS credentials ({error}); set them or run with an IAM role") from error
    except (BotoCoreError, OSError) as error:
        raise S3Unavailable(f"{type(error).__name__}: {error}") from error


def _error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
