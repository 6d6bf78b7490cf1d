"""A stand-in for Datadog's metrics query endpoint (``GET /api/v1/query``), fed by a real cluster, and
for the two intake endpoints the results notifier posts to (``POST /api/v1/events``, ``POST /api/v2/series``:
an API key, Datadog's documented bodies, ``202``; what they accepted is served at ``GET /_standin/intake``).

It answers as Datadog documents the endpoint:

- ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` must be the configured keys, otherwise ``403`` with
  ``{"errors": ["Forbidden"]}``;
- ``from``, ``to`` (Unix seconds) and ``query`` are required, otherwise ``400`` with ``{"errors": [...]}``;
  the query is ``[aggregator:]metric{tag,tag,...}`` (``*`` for all);
- the answer is ``{"status": "ok", "res_type": "time_series", "series": [...], "from_date", "to_date",
  "query", "group_by"}``, each series with ``metric``, ``pointlist`` (``[[ms, value], ...]``), ``scope``,
  ``tag_set``, ``expression``, ``aggr``, ``start``, ``end``, ``interval``, ``length``, ``display_name``.

Where the points come from: the stand-in plays a Datadog organisation that only this one cluster reports
to, through a ``datadog-agent`` DaemonSet (any namespace). A query gets a series only while such a
DaemonSet has Running pods, and only if its ``kube_cluster_name:`` tags (if any) name this cluster; the
points start when the oldest Running agent pod started, one every :data:`POINT_INTERVAL` seconds. So
deleting the DaemonSet, or making its pods disappear, empties the series, as it would in Datadog.

Stand-in-only endpoints, for tests (Datadog has nothing like them):

- ``GET /_standin/stats`` answers ``{"requests": N, "rejected": M, "faulted": F}`` (queries received,
  refused with 403, answered with a scripted fault), so tests can prove a client did not retry a refusal.
- ``GET /_standin/requests`` answers ``{"requests": [{"n": 1, "at": 12345.6, "status": 200}, ...]}``: the
  last :data:`RECENT_REQUESTS` queries, numbered as ``requests`` counts them, with their arrival on the
  host's monotonic clock (``time.monotonic()``, the same in every process) and the status answered, so a
  test can measure how long a client waited between two queries.
- ``POST /_standin/faults`` with ``{"status": 429, "count": 2, "retry_after": 2, "ratelimit_reset": 2}``
  answers the next ``count`` authenticated queries with ``status`` (400 to 599) instead of the series,
  after any faults already queued; ``retry_after`` (seconds) adds ``Retry-After``, and a 429 carries
  Datadog's rate-limit headers (``X-RateLimit-Limit``, ``-Period``, ``-Remaining: 0``, ``-Name``, and
  ``-Reset`` with ``ratelimit_reset`` seconds). It answers ``{"pending": P}``, the faults queued.
  ``DELETE /_standin/faults`` drops the queued faults. The stand-in runs as its own process in the
  sandbox, so this is how a test makes Datadog rate-limit or fail.

Run it with
``python -m kibertas_async_datadog.standin --port P --cluster-name NAME --kubeconfig PATH``; the keys
come from ``$STANDIN_DD_API_KEY`` and ``$STANDIN_DD_APP_KEY``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

    from kibertas_async import KubeClient

AGENT_NAME = "datadog-agent"
"""The DaemonSet name whose Running pods make the series non-empty."""
CLUSTER_TAG = "kube_cluster_name"
POINT_INTERVAL = 20
"""Seconds between two points, as the agent's default check interval (15 s) rounded by Datadog's rollup."""
API_KEY_ENV = "STANDIN_DD_API_KEY"
APP_KEY_ENV = "STANDIN_DD_APP_KEY"
RECENT_REQUESTS = 200
"""How many queries ``GET /_standin/requests`` remembers."""
MAX_FAULTS = 10_000
"""Most faults one ``POST /_standin/faults`` may queue ("all queries for the rest of a test")."""
RATE_LIMIT = 100
RATE_LIMIT_PERIOD = 10
RATE_LIMIT_NAME = "metrics_query"
"""What a scripted 429 says the query endpoint's limit is (requests per period, and its name)."""

_QUERY = re.compile(r"^\s*(?:(?P<aggr>avg|sum|min|max):)?(?P<metric>[A-Za-z][\w.]*)\s*\{(?P<scope>[^}]*)\}")


@dataclass(frozen=True)
class ParsedQuery:
    """The parts of a query the stand-in understands."""

    aggregator: str
    metric: str
    tags: tuple[str, ...]
    """The scope's tags; empty for ``*``."""


def parse_query(text: str) -> ParsedQuery:
    """``avg:kubernetes.cpu.user.total{kube_cluster_name:prod}`` → its aggregator, metric and tags.

    :raises ValueError: when the query is not ``[aggregator:]metric{scope}``.
    """
    match = _QUERY.match(text)
    if not match:
        raise ValueError(f"Error parsing query: expected [aggregator:]metric{{scope}}, got {text!r}")
    tags = tuple(tag.strip() for tag in match["scope"].split(",") if tag.strip() and tag.strip() != "*")
    return ParsedQuery(match["aggr"] or "avg", match["metric"], tags)


def scope_matches(query: ParsedQuery, cluster_name: str) -> bool:
    """Whether every ``kube_cluster_name:`` tag of the query names this cluster (other tags are ignored)."""
    names = [tag.partition(":")[2] for tag in query.tags if tag.partition(":")[0] == CLUSTER_TAG]
    return all(name == cluster_name for name in names)


def point_times(start: int, end: int, agent_since: float) -> list[int]:
    """Point timestamps (seconds) in ``[max(start, agent_since), end]``, every :data:`POINT_INTERVAL`
    back from ``end``: a running agent has always just reported."""
    first = max(start, int(agent_since))
    times: list[int] = []
    moment = end
    while moment >= first:
        times.append(moment)
        moment -= POINT_INTERVAL
    return sorted(times)


@dataclass(frozen=True)
class ScriptedFault:
    """How to answer one query instead of the series: a status and its headers."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        """The ``errors`` of the body, worded as Datadog words them."""
        if self.status == 429:
            return [f"Rate limit of {RATE_LIMIT} requests in {RATE_LIMIT_PERIOD} seconds reached. Try again later."]
        try:
            return [HTTPStatus(self.status).phrase]
        except ValueError:  # a status without a name, such as 599
            return [f"HTTP {self.status}"]


def parse_faults(document: object) -> list[ScriptedFault]:
    """The faults ``POST /_standin/faults`` asks for: ``{"status", "count"?, "retry_after"?, "ratelimit_reset"?}``.

    :raises ValueError: when the document is not such an object.
    """
    if not isinstance(document, dict) or set(document) - {"status", "count", "retry_after", "ratelimit_reset"}:
        raise ValueError('expected {"status": 429, "count": 1, "retry_after": 2, "ratelimit_reset": 2}')
    status, count = document.get("status"), document.get("count", 1)
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"status must be an HTTP error status (400-599), not {status!r}")
    if not isinstance(count, int) or not 1 <= count <= MAX_FAULTS:
        raise ValueError(f"count must be an integer from 1 to {MAX_FAULTS}, not {count!r}")
    headers: dict[str, str] = {}
    for key, header in (("retry_after", "Retry-After"), ("ratelimit_reset", "X-RateLimit-Reset")):
        value = document.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key} must be a number of seconds, not {value!r}")
        if header == "Retry-After" or status == 429:
            headers[header] = f"{value:g}"
    if status == 429:
        headers.update(
            {
                "X-RateLimit-Limit": str(RATE_LIMIT),
                "X-RateLimit-Period": str(RATE_LIMIT_PERIOD),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Name": RATE_LIMIT_NAME,
            }
        )
    return [ScriptedFault(status, headers) for _ in range(count)]


class DatadogStandin:
    """The aiohttp application and the cluster it reads agent pods from."""

    def __init__(self, cluster_name: str, kube: KubeClient, api_key: str, app_key: str) -> None:
        self.cluster_name = cluster_name
        self._kube = kube
        self._api_key = api_key
        self._app_key = app_key
        self.requests = 0
        self.rejected = 0
        self.faulted = 0
        self.recent: deque[dict[str, float]] = deque(maxlen=RECENT_REQUESTS)
        """The last queries: ``n`` (their number), ``at`` (monotonic arrival) and ``status``."""
        self.faults: deque[ScriptedFault] = deque()
        """Answers queued for the next authenticated queries, first first."""
        self.events: list[dict[str, Any]] = []
        """Events accepted by ``POST /api/v1/events``, as posted."""
        self.series: list[dict[str, Any]] = []
        """Series accepted by ``POST /api/v2/series``, as posted."""

    def application(self) -> web.Application:
        """The routes: the query endpoint, the stand-in's own endpoints and a health probe."""
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/api/v1/query", self.query)
        app.router.add_post("/api/v1/events", self.post_event)
        app.router.add_post("/api/v2/series", self.post_series)
        app.router.add_get("/_standin/intake", self.intake)
        app.router.add_get("/_standin/stats", self.stats)
        app.router.add_get("/_standin/requests", self.recent_requests)
        app.router.add_post("/_standin/faults", self.add_faults)
        app.router.add_delete("/_standin/faults", self.clear_faults)
        app.router.add_get("/healthz", self.health)
        return app

    async def health(self, request: web.Request) -> web.Response:
        """``ok`` once the server runs."""
        from aiohttp import web

        return web.Response(text="ok")

    async def stats(self, request: web.Request) -> web.Response:
        """How many queries came in, and how many were refused."""
        from aiohttp import web

        return web.json_response({"requests": self.requests, "rejected": self.rejected, "faulted": self.faulted})

    async def recent_requests(self, request: web.Request) -> web.Response:
        """The last queries: number, arrival (monotonic seconds) and status."""
        from aiohttp import web

        return web.json_response({"requests": list(self.recent)})

    async def add_faults(self, request: web.Request) -> web.Response:
        """Queue faults for the next queries (see the module's docstring)."""
        from aiohttp import web

        try:
            faults = parse_faults(json.loads(await request.text()))
        except ValueError as error:  # json.JSONDecodeError included
            return web.json_response({"errors": [str(error)]}, status=400)
        self.faults.extend(faults)
        return web.json_response({"pending": len(self.faults)})

    async def clear_faults(self, request: web.Request) -> web.Response:
        """Drop the queued faults."""
        from aiohttp import web

        self.faults.clear()
        return web.json_response({"pending": 0})

    async def post_event(self, request: web.Request) -> web.Response:
        """``POST /api/v1/events`` as Datadog documents it: an API key (no application key), JSON with a
        ``title`` and a ``text``; ``202`` with ``{"status": "ok", "event": {...}}``."""
        from aiohttp import web

        if request.headers.get("DD-API-KEY") != self._api_key:
            self.rejected += 1
            return web.json_response({"errors": ["Forbidden"]}, status=403)
        try:
            event = json.loads(await request.text())
        except ValueError:
            return web.json_response({"errors": ["Invalid JSON"]}, status=400)
        if not isinstance(event, dict) or not all(isinstance(event.get(key), str) for key in ("title", "text")):
            return web.json_response({"errors": ["Event title and text are required"]}, status=400)
        accepted = {**event, "id": len(self.events) + 1, "date_happened": event.get("date_happened", int(time.time()))}
        self.events.append(accepted)
        return web.json_response({"status": "ok", "event": accepted}, status=202)

    async def post_series(self, request: web.Request) -> web.Response:
        """``POST /api/v2/series`` as Datadog documents it: an API key, ``{"series": [{"metric", "type"?,
        "points": [{"timestamp", "value"}], "tags"?, "unit"?}]}``, points no older than an hour and at most
        ten minutes ahead; ``202`` with ``{"errors": []}``."""
        from aiohttp import web

        if request.headers.get("DD-API-KEY") != self._api_key:
            self.rejected += 1
            return web.json_response({"errors": ["Forbidden"]}, status=403)
        try:
            document = json.loads(await request.text())
        except ValueError:
            return web.json_response({"errors": ["Invalid JSON"]}, status=400)
        problem = _series_problem(document, time.time())
        if problem is not None:
            return web.json_response({"errors": [problem]}, status=400)
        self.series.extend(document["series"])
        return web.json_response({"errors": []}, status=202)

    async def intake(self, request: web.Request) -> web.Response:
        """What the intake endpoints accepted: ``{"events": [...], "series": [...]}``."""
        from aiohttp import web

        return web.json_response({"events": self.events, "series": self.series})

    async def query(self, request: web.Request) -> web.Response:
        """``GET /api/v1/query``: authenticate, play a queued fault if any, validate, answer with this
        cluster's series (or none)."""
        arrived = time.monotonic()
        self.requests += 1
        number = self.requests
        response = await self._answer_query(request)
        self.recent.append({"n": number, "at": arrived, "status": response.status})
        return response

    async def _answer_query(self, request: web.Request) -> web.Response:
        from aiohttp import web

        if request.headers.get("DD-API-KEY") != self._api_key or (
            request.headers.get("DD-APPLICATION-KEY") != self._app_key
        ):
            self.rejected += 1
            return web.json_response({"errors": ["Forbidden"]}, status=403)
        if self.faults:
            # After authentication, as Datadog counts rate limits per organisation.
            fault = self.faults.popleft()
            self.faulted += 1
            return web.json_response({"errors": fault.errors}, status=fault.status, headers=fault.headers)
        missing = [name for name in ("from", "to", "query") if not request.query.get(name)]
        if missing:
            return web.json_response({"errors": [f"missing required parameter(s): {', '.join(missing)}"]}, status=400)
        try:
            start, end = int(request.query["from"]), int(request.query["to"])
            parsed = parse_query(request.query["query"])
        except ValueError as error:
            return web.json_response({"errors": [str(error)]}, status=400)
        series: list[dict[str, Any]] = []
        agent_since = await self._agent_running_since()
        if agent_since is not None and scope_matches(parsed, self.cluster_name):
            times = point_times(start, end, agent_since)
            if times:
                series.append(self._series(request.query["query"], parsed, times))
        return web.json_response(
            {
                "status": "ok",
                "res_type": "time_series",
                "query": request.query["query"],
                "from_date": start * 1000,
                "to_date": end * 1000,
                "group_by": [],
                "series": series,
            }
        )

    def _series(self, expression: str, parsed: ParsedQuery, times: Sequence[int]) -> dict[str, Any]:
        scope = ",".join(parsed.tags) or "*"
        return {
            "metric": parsed.metric,
            "display_name": parsed.metric,
            "expression": expression,
            "aggr": parsed.aggregator,
            "scope": scope,
            "tag_set": list(parsed.tags),
            "pointlist": [[float(moment * 1000), 0.25] for moment in times],
            "start": times[0] * 1000,
            "end": times[-1] * 1000 + POINT_INTERVAL * 1000 - 1,
            "interval": POINT_INTERVAL,
            "length": len(times),
            "query_index": 0,
            "unit": None,
        }

    async def _agent_running_since(self) -> float | None:
        """When the oldest Running pod of a ``datadog-agent`` DaemonSet started; ``None`` if none runs."""
        from kibertas_async import DAEMONSETS, PODS

        daemonsets = await self._kube.list(DAEMONSETS, field_selector=f"metadata.name={AGENT_NAME}")
        owners = {item["metadata"]["uid"] for item in daemonsets["items"]}
        if not owners:
            return None
        pods = await self._kube.list(PODS, field_selector="status.phase=Running")
        started = [
            _timestamp(pod["status"].get("startTime") or pod["metadata"]["creationTimestamp"])
            for pod in pods["items"]
            if any(ref.get("uid") in owners for ref in pod["metadata"].get("ownerReferences") or [])
            and not pod["metadata"].get("deletionTimestamp")
        ]
        return min(started) if started else None


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class StandinControl:
    """A client of the stand-in-only endpoints, for tests and scripts: ``urls`` maps a cluster's name to
    its stand-in's base URL (``datadog-api-url`` in the sandbox's run config)."""

    def __init__(self, urls: dict[str, str]) -> None:
        self._urls = urls

    def _call(self, cluster: str, method: str, path: str, document: object = None) -> Any:
        import urllib.request

        data = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(f"{self._urls[cluster]}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def fault(self, cluster: str, **document: object) -> None:
        """``POST /_standin/faults``: answer the next queries of ``cluster`` with a 429 or 5xx."""
        self._call(cluster, "POST", "/_standin/faults", document)

    def clear_faults(self, cluster: str) -> None:
        """``DELETE /_standin/faults``."""
        self._call(cluster, "DELETE", "/_standin/faults")

    def requests_after(self, cluster: str, number: int) -> list[dict[str, float]]:
        """The queries ``cluster``'s stand-in received after its ``number``-th: ``n``, ``at``, ``status``."""
        recent: list[dict[str, float]] = self._call(cluster, "GET", "/_standin/requests")["requests"]
        return [item for item in recent if item["n"] > number]


async def serve(port: int, cluster_name: str, kubeconfig: str) -> None:
    """Run the stand-in on ``127.0.0.1:port`` until cancelled."""
    import anyio
    from aiohttp import web

    from kibertas_async import ClusterTarget, connect

    kube = await connect(ClusterTarget(name=cluster_name, kubeconfig=kubeconfig), timeout=30.0)
    standin = DatadogStandin(cluster_name, kube, os.environ[API_KEY_ENV], os.environ[APP_KEY_ENV])
    runner = web.AppRunner(standin.application(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        print(f"datadog stand-in for {cluster_name} on http://127.0.0.1:{port}", flush=True)
        await anyio.sleep_forever()
    finally:
        await runner.cleanup()
        await kube.aclose()


def _series_problem(document: object, now: float) -> str | None:
    """Why a ``POST /api/v2/series`` body is refused, or ``None``."""
    if not isinstance(document, dict) or not isinstance(document.get("series"), list) or not document["series"]:
        return "series is required"
    for item in document["series"]:
        if not isinstance(item, dict) or not isinstance(item.get("metric"), str) or not item["metric"]:
            return "every series needs a metric name"
        points = item.get("points")
        if not isinstance(points, list) or not points:
            return f"{item['metric']}: points are required"
        for point in points:
            if not isinstance(point, dict) or not isinstance(point.get("timestamp"), int):
                return f"{item['metric']}: every point needs an integer timestamp"
            if not now - 3600 <= point["timestamp"] <= now + 600:
                return f"{item['metric']}: points must be at most 1 hour old and 10 minutes ahead"
            if not isinstance(point.get("value"), int | float):
                return f"{item['metric']}: every point needs a value"
        if not all(isinstance(tag, str) for tag in item.get("tags", [])):
            return f"{item['metric']}: tags must be strings"
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--port``, ``--cluster-name``, ``--kubeconfig``."""
    import anyio

    parser = argparse.ArgumentParser(description="Stand-in for Datadog's metrics query API.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cluster-name", required=True)
    parser.add_argument("--kubeconfig", required=True)
    args = parser.parse_args(argv)
    anyio.run(serve, args.port, args.cluster_name, args.kubeconfig)


if __name__ == "__main__":
    main()
