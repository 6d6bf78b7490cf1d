"""The run's results in Datadog, where the users' monitors and dashboards already look (a Notifier).

After every run, through ``datadog_api_client`` (imported here only, when the run has ended):

- one **event** per cluster (``POST /api/v1/events``): title ``kibertas-async OK — <cluster>`` or
  ``kibertas-async NG — <cluster>``, alert type ``success``/``error``, the checks with their outcome, step
  and reason as text;
- two **metrics** per check and cluster (``POST /api/v2/series``, gauges): ``kibertas_async.check.duration``
  (seconds) and ``kibertas_async.check.ok`` (1 when PASSED or SKIPPED, else 0).

Both carry the tags ``cluster:``, ``check:``, ``outcome:``, ``run_id:``, and for metrics the version of
the add-on the check tests (``addon_version:``, from its ``<add-on> version`` fact) when it reported one.
Tags are built only from names, outcomes and versions, never from option values, so a secret cannot
become a tag; the report reaching a notifier is already redacted. Only the API key is needed (intake
endpoints take no application key). Delivery problems are logged (``notifier.failed``), never raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import anyio

from kibertas_async import CheckResult, Option, OptionValues, RunReport, get_logger, parse_bool
from kibertas_async_datadog.check import parse_http_url

NOTIFIER_NAME = "datadog-results"

RESULTS = Option[bool](
    "datadog-results",
    "Send each run's results to Datadog: an event per cluster and the metrics "
    "kibertas_async.check.duration/.ok per check (needs datadog-results-api-key).",
    default=False,
    parse=parse_bool,
    per_cluster=False,
    requires=("datadog-results-api-key",),
)
RESULTS_API_KEY = Option[str](
    "datadog-results-api-key",
    "Datadog API key the results are sent with (secret; no application key needed).",
    default="",
    per_cluster=False,
    secret=True,
    metavar="KEY",
)
RESULTS_URL = Option[str](
    "datadog-results-url",
    "Base URL of the Datadog API the results go to (https://api.<site>).",
    default="https://api.datadoghq.com",
    parse=parse_http_url,
    per_cluster=False,
    metavar="URL",
)
RESULTS_OPTIONS: tuple[Option[Any], ...] = (RESULTS, RESULTS_API_KEY, RESULTS_URL)
METRIC_DURATION = "kibertas_async.check.duration"
METRIC_OK = "kibertas_async.check.ok"
REQUEST_TIMEOUT = 30.0
"""Seconds one intake request may take."""
_TAG_UNSAFE = re.compile(r"[^a-z0-9_:./-]+")
_MAX_TEXT = 4000
"""Datadog truncates an event's text at 4,000 characters."""


def tag(key: str, value: str) -> str:
    """``key:value`` in Datadog's tag alphabet (lower case; anything else becomes ``_``)."""
    return f"{key}:{_TAG_UNSAFE.sub('_', value.strip().lower())}"[:200]


def addon_version(result: CheckResult) -> str | None:
    """The tested add-on's version, from the check's ``<add-on> version`` fact (``None``: not reported)."""
    for key, value in result.facts.items():
        if key.endswith(" version") and value and not value.startswith(("not found", "unknown")):
            return value
    return None


def result_tags(report: RunReport, result: CheckResult) -> list[str]:
    """The tags of one check's metrics."""
    tags = [
        tag("cluster", result.cluster),
        tag("check", result.check),
        tag("outcome", result.outcome.value),
        tag("run_id", report.run_id),
    ]
    version = addon_version(result)
    if version is not None:
        tags.append(tag("addon_version", version))
    return tags


def cluster_events(report: RunReport) -> list[dict[str, Any]]:
    """One event per cluster: ``title``, ``text``, ``tags``, ``alert_type`` (``success``/``error``)."""
    events: list[dict[str, Any]] = []
    for cluster in report.clusters:
        results = [r for r in report.results if r.cluster == cluster]
        ok = all(r.outcome.ok for r in results)
        lines = []
        for result in results:
            line = (
                f"{'OK' if result.outcome.ok else 'NG'} {result.check} ({result.outcome.value}, {result.duration:.1f}s)"
            )
            if not result.outcome.ok:
                line += f" — step {result.step!r}: {result.reason}" if result.step else f" — {result.reason}"
            lines.append(line)
        events.append(
            {
                "title": f"kibertas-async {'OK' if ok else 'NG'} — {cluster}",
                "text": "\n".join(lines)[:_MAX_TEXT],
                "tags": [tag("cluster", cluster), tag("run_id", report.run_id), "source:kibertas-async"],
                "alert_type": "success" if ok else "error",
            }
        )
    return events


def check_series(report: RunReport, timestamp: int) -> list[dict[str, Any]]:
    """Two gauges per check and cluster: its duration (seconds) and whether it was OK (1/0)."""
    series: list[dict[str, Any]] = []
    for result in report.results:
        tags = result_tags(report, result)
        series.append({"metric": METRIC_DURATION, "value": round(result.duration, 3), "unit": "second", "tags": tags})
        series.append({"metric": METRIC_OK, "value": 1.0 if result.outcome.ok else 0.0, "tags": tags})
    for item in series:
        item["timestamp"] = timestamp
    return series


@dataclass(frozen=True)
class ResultsSettings:
    """Where the results go; built from the options."""

    api_url: str
    api_key: str = field(repr=False)
    """Kept out of ``repr``, so it cannot reach a log by accident."""


class DatadogResultsNotifier:
    """Sends each run's results to Datadog as events and metrics (a :class:`kibertas_async.Notifier`)."""

    name = NOTIFIER_NAME

    def __init__(self, settings: ResultsSettings) -> None:
        self.settings = settings

    async def notify(self, report: RunReport) -> None:
        """Post the events, then the series; a failure of either is logged, not raised."""
        import time

        log = get_logger(run_id=report.run_id, notifier=self.name)
        events, series = cluster_events(report), check_series(report, int(time.time()))
        try:
            with anyio.fail_after(REQUEST_TIMEOUT * 2):
                await _post(self.settings, events, series)
        except Exception as error:  # every delivery problem: logged, never the run's exit code
            log.error("notifier.failed", reason=_describe(error))
            return
        log.info("notifier.posted", events=len(events), series=len(series))


def results_notifiers(options: OptionValues) -> list[DatadogResultsNotifier]:
    """The notifier when ``datadog-results`` is on (its key is then set: the option requires it)."""
    if not options[RESULTS]:
        return []
    return [DatadogResultsNotifier(ResultsSettings(api_url=options[RESULTS_URL], api_key=options[RESULTS_API_KEY]))]


async def _post(settings: ResultsSettings, events: Iterable[dict[str, Any]], series: list[dict[str, Any]]) -> None:
    import datadog_api_client
    from datadog_api_client.v1.api import events_api
    from datadog_api_client.v1.model import event_alert_type, event_create_request
    from datadog_api_client.v2.api import metrics_api
    from datadog_api_client.v2.model import metric_intake_type, metric_payload, metric_point, metric_series

    # The library is untyped at its edges (and its async methods are typed as sync): use it as Any.
    library: Any = datadog_api_client
    configuration = library.Configuration(host=settings.api_url, api_key={"apiKeyAuth": settings.api_key})
    client = library.AsyncApiClient(configuration)
    await client.__aenter__()
    try:
        events_client = cast(Any, events_api).EventsApi(client)
        for event in events:
            request = cast(Any, event_create_request).EventCreateRequest(
                title=event["title"],
                text=event["text"],
                tags=event["tags"],
                alert_type=cast(Any, event_alert_type).EventAlertType(event["alert_type"]),
            )
            await events_client.create_event(body=request)
        point, one_series = cast(Any, metric_point).MetricPoint, cast(Any, metric_series).MetricSeries
        gauge = cast(Any, metric_intake_type).MetricIntakeType.GAUGE
        payload = cast(Any, metric_payload).MetricPayload(
            series=[
                one_series(
                    metric=item["metric"],
                    type=gauge,
                    points=[point(timestamp=item["timestamp"], value=item["value"])],
                    tags=item["tags"],
                    **({"unit": item["unit"]} if "unit" in item else {}),
                )
                for item in series
            ]
        )
        await cast(Any, metrics_api).MetricsApi(client).submit_metrics(body=payload)
    finally:
        # AsyncApiClient.__aexit__ re-raises a pending exception before closing its aiosonic client (see
        # metrics.py): close that client ourselves, shielded and bounded.
        with anyio.move_on_after(REQUEST_TIMEOUT, shield=True):
            await client.rest_client._client.aclose()


def _describe(error: BaseException) -> str:
    from datadog_api_client.exceptions import ApiException

    if isinstance(error, ApiException):
        return f"HTTP {error.status}: {error.reason}"
    if isinstance(error, TimeoutError):
        return f"no answer within {REQUEST_TIMEOUT * 2:g}s"
    return f"{type(error).__name__}: {error}"
