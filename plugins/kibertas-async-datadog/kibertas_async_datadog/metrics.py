"""The one module that talks to ``datadog_api_client``: the metrics query endpoint (v1), async.

It is imported when the check runs, never by ``kibertas-async list`` or ``--help``: the client library
takes a noticeable time to import. Above it, the check sees :class:`Series` and two errors:
:class:`DatadogRejected` (permanent: bad keys, bad query; never retried) and :class:`DatadogUnavailable`
(temporary: network, 5xx, 429; the check polls again, no sooner than :attr:`DatadogUnavailable.retry_after`
when Datadog said how long to wait).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio

REQUEST_TIMEOUT = 30.0
"""Seconds one query may take before it counts as a temporary failure."""


@dataclass(frozen=True)
class Series:
    """One time series of a query's answer, summarised."""

    metric: str
    scope: str
    points: int
    """How many points carry a value."""
    last_timestamp_ms: float | None
    last_value: float | None


class DatadogRejected(Exception):
    """Datadog refused the request for good (401/403: keys; 400: the query). Retrying cannot help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class DatadogUnavailable(Exception):
    """The request did not get an answer worth acting on this time (network, 5xx, 429, timeout)."""

    def __init__(
        self, detail: str, *, status: int | None = None, retry_after: float | None = None, limit_name: str = ""
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        """The HTTP status; ``None`` when no answer came."""
        self.retry_after = retry_after
        """Seconds Datadog asked us to wait before the next request; ``None`` when it did not say."""
        self.limit_name = limit_name
        """``X-RateLimit-Name`` of a 429: the rate limit to ask Datadog support to raise."""

    @property
    def rate_limited(self) -> bool:
        """Whether Datadog answered 429 Too Many Requests."""
        return self.status == 429

    def explain(self) -> str:
        """One line for the step's progress and the check's reason, with the wait Datadog asked for:
        ``rate limited by Datadog (retry after 2s), limit 'query'``."""
        asked = "" if self.retry_after is None else f"retry after {math.ceil(self.retry_after)}s"
        if self.rate_limited:
            limit = f", limit {self.limit_name!r}" if self.limit_name else ""
            return f"rate limited by Datadog ({asked or 'no wait given'}){limit}"
        return f"query failed: {self.detail}" + (f" ({asked})" if asked else "")


class MetricsClient:
    """An open connection to one Datadog site's API, for ``GET /api/v1/query``."""

    def __init__(self, api_url: str, api_key: str, app_key: str) -> None:
        from datadog_api_client import AsyncApiClient, Configuration

        # The library is untyped at its edges (and its async methods are typed as sync): use it as Any.
        configuration_class: Any = Configuration
        configuration = configuration_class(host=api_url, api_key={"apiKeyAuth": api_key, "appKeyAuth": app_key})
        # Our own polling decides when to try again; the client's retries would hide 429s from it.
        configuration.enable_retry = False
        self._client: Any = AsyncApiClient(configuration)

    async def __aenter__(self) -> MetricsClient:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # AsyncApiClient.__aexit__ re-raises a pending exception before closing its aiosonic client, which
        # leaks the pooled connections whenever the check fails: close that client ourselves. Shielded, and
        # like every shield bounded: a close that hangs must not hold the check's cleanup or a signal.
        with anyio.move_on_after(REQUEST_TIMEOUT, shield=True):
            await self._client.rest_client._client.aclose()

    async def query(self, start: int, end: int, query: str) -> list[Series]:
        """The series ``query`` yields between ``start`` and ``end`` (Unix seconds).

        :raises DatadogRejected: on 400, 401, 403 (and any other 4xx but 408/429).
        :raises DatadogUnavailable: on network errors, timeouts, 408, 429 and 5xx, with the wait the
            answer's headers ask for (:func:`asked_wait`).
        """
        from aiosonic.exceptions import AiosonicError  # type: ignore[import-untyped]  # under AsyncApiClient
        from datadog_api_client.exceptions import ApiException
        from datadog_api_client.v1.api.metrics_api import MetricsApi

        api_class: Any = MetricsApi
        api = api_class(self._client)
        try:
            # Shielded from outside cancellation (a step deadline, a signal): aiosonic leaks the connection
            # of a request cancelled midway. The request stays bounded by its own timeout, and the
            # cancellation is delivered right after it.
            with anyio.CancelScope(shield=True), anyio.fail_after(REQUEST_TIMEOUT):
                response = await api.query_metrics(_from=start, to=end, query=query)
        except TimeoutError:
            raise DatadogUnavailable(f"no answer within {REQUEST_TIMEOUT:g}s") from None
        except ApiException as error:
            status = int(error.status or 0)
            detail = _error_detail(error.body) or str(error.reason or "")
            if 400 <= status < 500 and status not in (408, 429):
                raise DatadogRejected(status, detail) from None
            headers = {str(name).lower(): str(value) for name, value in (error.headers or {}).items()}
            raise DatadogUnavailable(
                f"HTTP {status}: {detail}",
                status=status,
                retry_after=asked_wait(status, headers),
                limit_name=headers.get("x-ratelimit-name", "") if status == 429 else "",
            ) from None
        except (OSError, AiosonicError) as error:
            raise DatadogUnavailable(f"{type(error).__name__}: {error}") from None
        return [_summarise(series) for series in response.get("series", [])]


def asked_wait(status: int, headers: Mapping[str, str], clock: Callable[[], float] = time.time) -> float | None:
    """Seconds an answer asks the client to wait before the next request; ``None`` when it does not say.

    ``Retry-After`` (seconds, or an HTTP date) on any status; otherwise, on a 429, Datadog's
    ``X-RateLimit-Reset``: the seconds until the rate-limit window resets (not a Unix time, unlike
    Chatwork's). ``headers`` are keyed in lower case.
    """
    retry_after = headers.get("retry-after", "").strip()
    if retry_after:
        seconds = _seconds(retry_after)
        if seconds is not None:
            return seconds
        from email.utils import parsedate_to_datetime  # rarely needed; costly to import

        try:
            return max(0.0, parsedate_to_datetime(retry_after).timestamp() - clock())
        except (TypeError, ValueError):
            pass
    if status == 429:
        return _seconds(headers.get("x-ratelimit-reset", ""))
    return None


def _seconds(text: str) -> float | None:
    """A finite number of seconds (below zero counts as zero); ``None`` for anything else."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _summarise(series: Any) -> Series:
    points = [point.value for point in series.get("pointlist", [])]
    valued = [point for point in points if len(point) == 2 and point[1] is not None]
    last = valued[-1] if valued else None
    return Series(
        metric=str(series.get("metric", "")),
        scope=str(series.get("scope", "")),
        points=len(valued),
        last_timestamp_ms=None if last is None else float(last[0]),
        last_value=None if last is None else float(last[1]),
    )


def _error_detail(body: object) -> str:
    """Datadog's ``{"errors": [...]}`` as one line (the body never echoes the keys)."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            return "; ".join(str(item) for item in errors)
    if isinstance(body, bytes | str):
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        return text.strip()[:200]
    return ""
