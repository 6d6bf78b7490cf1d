"""The ``datadog-agent`` check: this cluster's metrics arrive in Datadog, so its agent works.

The reference tool sleeps three minutes, then asks for ``avg:kubernetes.cpu.user.total{*}`` over a fixed
window: any cluster's agent makes it pass. Here the query is scoped to the cluster by its Datadog tag,
the window moves with each poll, polling starts at once with backoff, rejected keys end the check at
once instead of being retried until the timeout, and a rate limit (429) or an unavailable API (5xx) is
waited out as long as Datadog asks (``Retry-After``, ``X-RateLimit-Reset``) within the wait timeout.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from kibertas_async import (
    WORKLOAD_READ,
    Check,
    CheckContext,
    Option,
    PermanentError,
    PollState,
    StepTimeout,
    TemporaryError,
    parse_duration,
    report_addon_version,
    workload_option,
)

if TYPE_CHECKING:
    from kibertas_async_datadog.metrics import DatadogUnavailable, MetricsClient, Series

DEFAULT_QUERY = "avg:kubernetes.cpu.user.total{kube_cluster_name:{cluster}}"
CLUSTER_PLACEHOLDER = "{cluster}"
STEP_WAIT_FOR_METRICS = "wait for metrics in Datadog"
FIRST_DELAY = 2.0
"""Seconds between the first two queries; the delay doubles after each further one, up to MAX_DELAY."""
MAX_DELAY = 30.0


def parse_http_url(text: str) -> str:
    """An ``http(s)://`` base URL without a trailing ``/``; empty means unset."""
    url = text.strip().rstrip("/")
    if url and not url.startswith(("https://", "http://")):
        raise ValueError(f"{text!r} is not an http(s) URL (example: https://api.datadoghq.com)")
    return url


def parse_site(text: str) -> str:
    """A Datadog site such as ``datadoghq.com`` or ``datadoghq.eu`` (a leading ``app.``/``api.`` is dropped)."""
    site = text.strip().lower().removeprefix("https://").rstrip("/")
    for prefix in ("app.", "api."):
        site = site.removeprefix(prefix)
    if not site or "/" in site or "." not in site:
        raise ValueError(f"{text!r} is not a Datadog site (examples: datadoghq.com, ap1.datadoghq.com)")
    return site


API_KEY = Option[str](
    "datadog-api-key",
    "Datadog API key (secret).",
    default="",
    env=("DD_API_KEY",),
    secret=True,
    metavar="KEY",
)
APP_KEY = Option[str](
    "datadog-app-key",
    "Datadog application key, needed to read metrics (secret).",
    default="",
    env=("DD_APP_KEY",),
    secret=True,
    metavar="KEY",
)
SITE = Option[str](
    "datadog-site",
    "Datadog site the organisation lives on; the API is https://api.<site>.",
    default="datadoghq.com",
    parse=parse_site,
    env=("DD_SITE",),
    metavar="SITE",
)
API_URL = Option[str](
    "datadog-api-url",
    "Base URL of the Datadog API, overriding the site (a proxy, or the sandbox's stand-in).",
    default="",
    parse=parse_http_url,
    metavar="URL",
)
QUERY = Option[str](
    "datadog-query",
    "Metrics query; {cluster} is replaced by the cluster's Datadog name.",
    default=DEFAULT_QUERY,
    env=("QUERY_METRICS",),
    metavar="QUERY",
)
CLUSTER_NAME = Option[str](
    "datadog-cluster-name",
    "The cluster's name in Datadog (its kube_cluster_name tag); default: the cluster's name here.",
    default="",
    env=("DD_CLUSTER_NAME",),
    metavar="NAME",
)
WINDOW = Option[float](
    "datadog-window",
    "How far back each query looks (the window ends now, at every poll).",
    default=300.0,
    parse=parse_duration,
    metavar="DURATION",
)
WAIT_TIMEOUT = Option[float](
    "datadog-wait-timeout",
    "How long to wait for a non-empty series before the check fails.",
    default=600.0,
    parse=parse_duration,
    metavar="DURATION",
)


WORKLOAD = workload_option("datadog-agent", "datadog/datadog-agent,datadog")


class DatadogAgentCheck(Check):
    """Polls the Datadog metrics API until this cluster's series has points."""

    name: ClassVar[str] = "datadog-agent"
    description: ClassVar[str] = "The Datadog agent's metrics for this cluster reach Datadog."
    tags: ClassVar[frozenset[str]] = frozenset({"datadog", "monitoring", "external"})
    timeout: ClassVar[float] = 900.0
    options = (API_KEY, APP_KEY, SITE, API_URL, QUERY, CLUSTER_NAME, WINDOW, WAIT_TIMEOUT, WORKLOAD)
    permissions = (WORKLOAD_READ,)  # the agent's version
    creates: ClassVar[tuple[str, ...]] = ()
    needs_kubernetes: ClassVar[bool] = True
    """Only to read the agent's version from its DaemonSet; the proof itself asks Datadog."""

    async def run(self, ctx: CheckContext) -> None:
        """Query until a non-empty series arrives; rejected keys or query fail at once."""
        await report_addon_version(ctx, "datadog-agent", ctx.options[WORKLOAD])
        cluster_name = ctx.options[CLUSTER_NAME] or ctx.cluster.name
        query = ctx.options[QUERY].replace(CLUSTER_PLACEHOLDER, cluster_name)
        api_url = ctx.options[API_URL] or f"https://api.{ctx.options[SITE]}"
        window = int(ctx.options[WINDOW])
        wait_timeout = ctx.options[WAIT_TIMEOUT]
        ctx.fact("query", query)
        ctx.fact("api", api_url)
        async with ctx.step(STEP_WAIT_FOR_METRICS):
            if ctx.cluster.in_cluster and not ctx.options[CLUSTER_NAME] and CLUSTER_PLACEHOLDER in ctx.options[QUERY]:
                ctx.fail(
                    f"not configured: inside a cluster its Datadog name is unknown; set {CLUSTER_NAME.flag} "
                    f"({CLUSTER_NAME.env[0]}) to its kube_cluster_name tag"
                )
            missing = [f"{option.flag} ({option.env[0]})" for option in (API_KEY, APP_KEY) if not ctx.options[option]]
            if missing:
                ctx.fail(f"not configured: {' and '.join(missing)} must be set")
            from kibertas_async_datadog.metrics import MetricsClient

            async with MetricsClient(api_url, ctx.options[API_KEY], ctx.options[APP_KEY]) as client:
                poller = _SeriesPoller(client, query, window)
                series = await ctx.poll(
                    poller.attempt,
                    timeout=wait_timeout,
                    fail=poller.failure,
                    first_delay=FIRST_DELAY,
                    max_delay=MAX_DELAY,
                )
                best = max(series, key=lambda item: item.points)
                ctx.fact("series", len(series))
                ctx.fact("points", best.points)
                ctx.fact("scope", best.scope)
                ctx.fact("last_value", best.last_value)
                ctx.fact("attempts", poller.attempts)


class _NoAnswer(TemporaryError):
    """Datadog gave no usable answer this time (network, 429, 5xx): asked again, no sooner than it said."""

    def __init__(self, error: DatadogUnavailable) -> None:
        super().__init__(error.explain(), delay=error.retry_after)


class _SeriesPoller:
    """One query per attempt over a window ending now, for ``ctx.poll``: at once, then with backoff
    (``FIRST_DELAY`` doubling up to ``MAX_DELAY``, with jitter), never sooner than Datadog asked."""

    def __init__(self, client: MetricsClient, query: str, window: int) -> None:
        self._client = client
        self._query = query
        self._window = window
        self.attempts = 0

    async def attempt(self) -> list[Series]:
        """One query: the series with points; :class:`TemporaryError` (why not yet) or
        :class:`PermanentError` (rejected keys or query: NG at once) otherwise."""
        from kibertas_async_datadog.metrics import DatadogRejected, DatadogUnavailable

        self.attempts += 1
        end = int(time.time())
        try:
            series = await self._client.query(end - self._window, end, self._query)
        except DatadogRejected as error:
            if error.status in (401, 403):
                raise PermanentError(
                    f"Datadog rejected the API or application key (HTTP {error.status}: {error.detail}); "
                    "check DD_API_KEY, DD_APP_KEY and that DD_SITE is the organisation's site"
                ) from None
            raise PermanentError(
                f"Datadog rejected the query {self._query!r} (HTTP {error.status}: {error.detail})"
            ) from None
        except DatadogUnavailable as error:
            raise _NoAnswer(error) from None
        with_points = [item for item in series if item.points]
        if not with_points:
            raise TemporaryError(f"{len(series)} series, no points" if series else "empty series")
        return with_points

    def failure(self, state: PollState) -> str:
        """Why the wait ran out: NG when Datadog answered with an empty series; TIMEOUT (raised) when its
        last answer was none at all, which proves nothing about the agent."""
        last = state.error.message if state.error is not None else "no answer yet"
        if isinstance(state.error, _NoAnswer):
            raise StepTimeout(
                f"no answer from Datadog within {state.waited} ({self.attempts} queries; last: {last})",
                step=STEP_WAIT_FOR_METRICS,
                timeout=state.timeout,
            )
        return (
            f"the series of {self._query} stayed empty for {state.waited} "
            f"({self.attempts} queries over the last {self._window}s each; last: {last})"
        )
