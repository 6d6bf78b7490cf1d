"""The one module of the engine that talks to ``aioboto3``: put, list and get report objects in S3.

``aioboto3`` is imported when a request is made, never by ``--help``, ``list`` or a run without
``--report-s3``. It is not a dependency of the core distribution: it comes with the fluent check's
plugin (``kibertas-async-fluent``, in the image), or ``pip install aioboto3``; :func:`require_aioboto3`
says so before anything runs.

Where and as whom: the AWS SDK's own configuration, as every AWS tool reads it: credentials from the
default chain (environment, shared files, web identity / IRSA, container and instance metadata), the
region from ``AWS_REGION``/``AWS_DEFAULT_REGION`` or the config file, and another endpoint (MinIO, moto)
from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio

from kibertas_async.errors import KibertasError, UsageError

REQUEST_TIMEOUT = 60.0
"""The most one request may take; botocore's own timeouts (connect 10 s, read 30 s) come first."""


class S3Error(KibertasError):
    """An S3 request failed; the message says which and why (never a credential)."""


def require_aioboto3(source: str) -> None:
    """:raises UsageError: ``aioboto3`` cannot be imported, naming how to install it."""
    if importlib.util.find_spec("aioboto3") is None:
        raise UsageError(
            f"{source} needs aioboto3, which is not installed: pip install aioboto3 "
            "(it comes with kibertas-async-fluent, and is in the image)"
        )


@contextlib.asynccontextmanager
async def _client() -> AsyncIterator[Any]:
    import aioboto3
    from botocore.config import Config  # type: ignore[import-untyped]

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30)
    async with aioboto3.Session().client("s3", config=config) as client:
        yield client


@contextlib.contextmanager
def _mapped_errors(action: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    try:
        with anyio.fail_after(REQUEST_TIMEOUT):
            yield
    except TimeoutError:
        raise S3Error(f"{action}: no answer within {REQUEST_TIMEOUT:g}s") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        raise S3Error(f"{action}: {code}: {message}".rstrip(": ")) from None
    except (BotoCoreError, OSError) as error:
        raise S3Error(f"{action}: {type(error).__name__}: {error}") from None


async def put_object(bucket: str, key: str, data: bytes) -> None:
    """Write ``s3://bucket/key``.

    :raises S3Error: the request failed.
    """
    with _mapped_errors(f"put s3://{bucket}/{key}"):
        async with _client() as client:
            await client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/json")


async def list_keys(bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` (all pages).

    :raises S3Error: the request failed.
    """
    keys: list[str] = []
    with _mapped_errors(f"list s3://{bucket}/{prefix}"):
        async with _client() as client:
            query: dict[str, str] = {"Bucket": bucket, "Prefix": prefix}
            while True:
                page = await client.list_objects_v2(**query)
                keys.extend(item["Key"] for item in page.get("Contents", []))
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated") or not token:
                    return keys
                query["ContinuationToken"] = token
    raise AssertionError("unreachable")  # pragma: no cover  (mypy: the loop above always returns)


async def get_object(bucket: str, key: str) -> bytes:
    """The bytes of ``s3://bucket/key``.

    :raises S3Error: the request failed (a missing key too).
    """
    with _mapped_errors(f"get s3://{bucket}/{key}"):
        async with _client() as client:
            response = await client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                data: bytes = await body.read()
    return data
