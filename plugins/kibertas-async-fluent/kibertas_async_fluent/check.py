"""The ``fluent`` check: a fresh pod's log lines arrive in the S3 bucket, so the log shipper works.

The reference tool lists the first page of the prefix every 60 s (waiting 60 s before the first look)
and passes on ANY object newer than its start, whoever's logs it holds. Here the generator prints a
marker unique to this run, every page is listed, polling starts at once with backoff, and only an object
that contains the marker proves the path from pod to bucket.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from kibertas_async import (
    DEPLOYMENTS,
    NODES,
    WORKLOAD_READ,
    Check,
    CheckContext,
    Option,
    PermanentError,
    Permission,
    PollState,
    TemporaryError,
    optional,
    parse_bool,
    parse_duration,
    parse_mapping,
    parse_positive_int,
    report_addon_version,
    workload_option,
)
from kibertas_async_fluent.s3 import (
    BucketMissing,
    LogBucket,
    LogObject,
    S3Denied,
    S3Settings,
    S3Unavailable,
    contains_marker,
)

if TYPE_CHECKING:
    from kibertas_async import KubeObject

BUCKET_CHECK_TIMEOUT = 60.0
"""Seconds S3 may stay unreachable before the check gives up (a missing bucket fails at once)."""
DEFAULT_LOG_PATH = "fluentd/{env}/{namespace}/dt={date:%Y%m%d}"
SPOT_SELECTOR = "eks.amazonaws.com/capacityType=SPOT"
MARKER_ENV = "LOG_MARKER"
STEP_CHECK_BUCKET = "check log bucket"
STEP_CREATE_NAMESPACE = "create namespace"
STEP_CREATE_GENERATOR = "create log generator"
STEP_WAIT_READY = "wait for log generator ready"
STEP_FIND_MARKER = "find marker in S3"


def render_log_path(template: str, *, env: str, namespace: str, date: datetime) -> str:
    """The S3 prefix for one day: ``template`` with ``{env}``, ``{namespace}`` and ``{date:<strftime>}``."""
    return template.format(env=env, namespace=namespace, date=date)


def parse_log_path(text: str) -> str:
    """A prefix template using only ``{env}``, ``{namespace}`` and ``{date:...}``."""
    template = text.strip().lstrip("/")
    try:
        render_log_path(template, env="env", namespace="namespace", date=datetime(2000, 1, 2, tzinfo=UTC))
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            f"{text!r} is not a path template with {{env}}, {{namespace}} and {{date:%Y%m%d}} ({error})"
        ) from None
    return template


LOG_BUCKET_NAME = Option[str](
    "log-bucket-name", "S3 bucket the log shipper writes to.", default="kubernetes-logs", env=("LOG_BUCKET_NAME",)
)
LOG_PATH = Option[str](
    "log-path",
    "Prefix template of the logs in the bucket ({env}, {namespace}, {date:%Y%m%d}).",
    default=DEFAULT_LOG_PATH,
    parse=parse_log_path,
    env=("LOG_PATH",),
    metavar="TEMPLATE",
)
LOG_ENV = Option[str]("log-env", "The {env} of the log path.", default="test", env=("ENV",))
USE_PATH_STYLE = Option[bool](
    "use-path-style",
    "Address the bucket as endpoint/bucket (S3-compatible stores) instead of bucket.endpoint.",
    default=False,
    parse=parse_bool,
    env=("USE_PATH_STYLE",),
)
AWS_ENDPOINT_URL = Option[str](
    "aws-endpoint-url", "S3 endpoint URL; empty: AWS's own.", default="", env=("AWS_ENDPOINT_URL",), metavar="URL"
)
AWS_REGION = Option[str](
    "aws-region",
    "AWS region; empty: the AWS configuration chain.",
    default="",
    env=("AWS_REGION", "AWS_DEFAULT_REGION"),
)
AWS_ACCESS_KEY_ID = Option[str](
    "aws-access-key-id",
    "AWS access key id; empty: the AWS default credential chain (environment, profile, IRSA, instance role).",
    default="",
    secret=True,
    metavar="KEY",
)
AWS_SECRET_ACCESS_KEY = Option[str](
    "aws-secret-access-key",
    "AWS secret access key, with --aws-access-key-id (secret).",
    default="",
    secret=True,
    metavar="KEY",
)
RESOURCE_NAMESPACE = Option[str](
    "fluent-namespace",
    "Existing namespace to run the log generator in; empty: a throwaway namespace.",
    default="",
    env=("RESOURCE_NAMESPACE",),
)
DEPLOYMENT_NAME = Option[str](
    "fluent-deployment-name",
    "Name of the log generator Deployment.",
    default="burst-log-generator",
    env=("DEPLOYMENT_NAME",),
)
REPLICAS = Option[int | None](
    "fluent-replicas",
    "Log generator replicas; default: spot nodes / 3 + 1, as the reference.",
    default=None,
    parse=optional(parse_positive_int),
)
IMAGE = Option[str](
    "fluent-image", "Image of the log generator (needs sh, echo, head, base64).", default="busybox:1.36"
)
FLUENTD_POD_LABELS = Option[dict[str, str]](
    "fluentd-pod-labels",
    "Labels of the log shipper's pods; the generator prefers nodes without them (the reference's anti-affinity).",
    default={"app.kubernetes.io/instance": "fluentd"},
    parse=parse_mapping,
)
READY_TIMEOUT = Option[float](
    "fluent-ready-timeout", "How long the log generator may take to become Ready.", default=300.0, parse=parse_duration
)
WAIT_TIMEOUT = Option[float](
    "log-wait-timeout",
    "How long to wait for an object holding this run's marker before the check fails.",
    default=600.0,
    parse=parse_duration,
)


FLUENTD_WORKLOAD = workload_option("fluentd", "logging/fluentd")


class FluentCheck(Check):
    """Runs a log generator printing a marker, then lists S3 until an object holds that marker."""

    name: ClassVar[str] = "fluent"
    description: ClassVar[str] = "A fresh pod's log lines reach the S3 log bucket (fluentd or another shipper)."
    tags: ClassVar[frozenset[str]] = frozenset({"fluentd", "logging", "s3", "external"})
    timeout: ClassVar[float] = 900.0
    permissions = (
        Permission("", ("nodes",), ("list",)),
        Permission("apps", ("deployments",), ("create", "get", "list", "watch", "delete")),
        WORKLOAD_READ,  # fluentd's version
    )
    options = (
        LOG_BUCKET_NAME,
        LOG_PATH,
        LOG_ENV,
        USE_PATH_STYLE,
        AWS_ENDPOINT_URL,
        AWS_REGION,
        AWS_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY,
        RESOURCE_NAMESPACE,
        DEPLOYMENT_NAME,
        REPLICAS,
        IMAGE,
        FLUENTD_POD_LABELS,
        READY_TIMEOUT,
        WAIT_TIMEOUT,
        FLUENTD_WORKLOAD,
    )
    creates: ClassVar[tuple[str, ...]] = ("Namespace fluent-test-YYYYMMDD-xxxxx", "Deployment burst-log-generator")

    async def run(self, ctx: CheckContext) -> None:
        """Bucket reachable, generator up and Ready, then poll S3 for the marker."""
        # S3 keeps LastModified to the second: an object written in our first second must count.
        started_at = datetime.now(UTC).replace(microsecond=0)
        marker = f"kibertas-async-marker-{ctx.run_id}-{secrets.token_hex(4)}"
        name = ctx.options[DEPLOYMENT_NAME]
        ctx.fact("marker", marker)
        await report_addon_version(ctx, "fluentd", ctx.options[FLUENTD_WORKLOAD])
        settings = S3Settings(
            bucket=ctx.options[LOG_BUCKET_NAME],
            endpoint_url=ctx.options[AWS_ENDPOINT_URL],
            region=ctx.options[AWS_REGION],
            path_style=ctx.options[USE_PATH_STYLE],
            access_key_id=ctx.options[AWS_ACCESS_KEY_ID],
            secret_access_key=ctx.options[AWS_SECRET_ACCESS_KEY],
        )
        async with LogBucket(settings) as bucket:
            # Before creating anything: a wrong bucket, region or credentials fail here, at once.
            async with ctx.step(STEP_CHECK_BUCKET, timeout=BUCKET_CHECK_TIMEOUT):
                with _permanent_s3_errors_fail(settings):
                    await ctx.poll(lambda: _bucket_answers(bucket), first_delay=1.0, max_delay=5.0)
            async with ctx.step(STEP_CREATE_NAMESPACE):
                namespace = ctx.options[RESOURCE_NAMESPACE] or await ctx.namespace()
            async with ctx.step(STEP_CREATE_GENERATOR):
                replicas = ctx.options[REPLICAS]
                if replicas is None:
                    spot_nodes = len((await ctx.kube.list(NODES, label_selector=SPOT_SELECTOR))["items"])
                    replicas = spot_nodes // 3 + 1
                ctx.fact("replicas", replicas)
                await ctx.create(DEPLOYMENTS, self._deployment(ctx, name, replicas, marker), namespace)
            async with ctx.step(STEP_WAIT_READY, timeout=ctx.options[READY_TIMEOUT]):
                await ctx.wait_for(DEPLOYMENTS, name, namespace, _is_ready, progress=_readiness)
            async with ctx.step(STEP_FIND_MARKER):
                finder = _MarkerFinder(ctx, namespace, marker, started_at)
                wait_timeout = ctx.options[WAIT_TIMEOUT]
                with _permanent_s3_errors_fail(settings):
                    found = await ctx.poll(
                        lambda: finder.attempt(bucket),
                        timeout=wait_timeout,
                        fail=finder.failure,
                        first_delay=1.0,
                        max_delay=15.0,
                    )
                ctx.fact("object", f"s3://{settings.bucket}/{found.key}")
                ctx.fact("object_last_modified", found.last_modified.isoformat())
                ctx.fact("listings", finder.listings)

    def _deployment(self, ctx: CheckContext, name: str, replicas: int, marker: str) -> KubeObject:
        labels = {"app": name}
        # The marker is printed with every burst; the random lines make it a burst, as the reference's.
        script = (
            f'while true; do echo "${MARKER_ENV} burst from $HOSTNAME"; '
            "head -c 3072 /dev/urandom | base64 -w 128; sleep 2; done"
        )
        return {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": {**labels, **ctx.labels}},
                    "spec": {
                        "affinity": {
                            "podAntiAffinity": {
                                "preferredDuringSchedulingIgnoredDuringExecution": [
                                    _preferred_away_from(ctx.options[FLUENTD_POD_LABELS], weight=10),
                                    _preferred_away_from(labels, weight=1),
                                ]
                            }
                        },
                        "terminationGracePeriodSeconds": 0,
                        "containers": [
                            {
                                "name": "generator",
                                "image": ctx.options[IMAGE],
                                "command": ["/bin/sh", "-c"],
                                "args": [script],
                                "env": [{"name": MARKER_ENV, "value": marker}],
                                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                            }
                        ],
                    },
                },
            },
        }


class _MarkerFinder:
    """One listing of the day's prefix(es) per call; returns the first new object that holds the marker."""

    def __init__(self, ctx: CheckContext, namespace: str, marker: str, started_at: datetime) -> None:
        self._ctx = ctx
        self._namespace = namespace
        self._marker = marker
        self._started_at = started_at
        self._inspected: set[tuple[str, str]] = set()
        self.listings = 0
        self.prefixes: list[str] = []
        self.total = 0
        self.newer = 0

    def _current_prefixes(self) -> list[str]:
        """Every day's prefix from the start until now (a run across midnight spans two)."""
        template, env = self._ctx.options[LOG_PATH], self._ctx.options[LOG_ENV]
        day, today = self._started_at, datetime.now(UTC)
        prefixes: list[str] = []
        while day.date() <= today.date():
            prefix = render_log_path(template, env=env, namespace=self._namespace, date=day)
            if prefix not in prefixes:
                prefixes.append(prefix)
            day += timedelta(days=1)
        return prefixes

    async def attempt(self, bucket: LogBucket) -> LogObject:
        """One listing: the first new object holding the marker, else :class:`TemporaryError` saying what
        the listing saw (or the S3 error)."""
        self.listings += 1
        self.prefixes = self._current_prefixes()
        try:
            objects = [item for prefix in self.prefixes for item in await bucket.list(prefix)]
            newer = [item for item in objects if item.last_modified >= self._started_at]
            self.total, self.newer = len(objects), len(newer)
            for item in sorted(newer, key=lambda entry: entry.last_modified, reverse=True):
                if (item.key, item.etag) in self._inspected:
                    continue
                data = await bucket.read(item.key)
                self._inspected.add((item.key, item.etag))
                if data is not None and contains_marker(data, self._marker):
                    return item
        except S3Unavailable as error:
            raise TemporaryError(f"listing {self.listings}: S3 error: {error}") from None
        raise TemporaryError(f"listing {self.listings}: {self._summary()}")

    def _summary(self) -> str:
        where = " and ".join(f"s3://{self._ctx.options[LOG_BUCKET_NAME]}/{prefix}" for prefix in self.prefixes)
        if self.total == 0:
            return f"no object under {where}"
        if self.newer == 0:
            return f"{self.total} objects under {where}, none newer than the start ({self._started_at:%H:%M:%SZ})"
        return (
            f"{self.total} objects under {where} ({self.newer} newer than the start), "
            f"none contains marker {self._marker}"
        )

    def failure(self, state: PollState) -> str:
        """Why the check fails when the wait runs out: what the last successful listing saw."""
        return f"after {state.waited} and {self.listings} listings: {self._summary()}"


async def _bucket_answers(bucket: LogBucket) -> bool:
    try:
        await bucket.check_access()
    except S3Unavailable as error:
        raise TemporaryError(f"S3 error: {error}") from None
    return True


@contextlib.contextmanager
def _permanent_s3_errors_fail(settings: S3Settings) -> Iterator[None]:
    """A missing bucket or refused credentials end the check at once (they end a poll at once, being no
    :class:`TemporaryError`): waiting cannot fix them."""
    where = settings.endpoint_url or "AWS S3"
    try:
        yield
    except BucketMissing as error:
        raise PermanentError(f"{error} at {where}; check LOG_BUCKET_NAME and the region") from None
    except S3Denied as error:
        raise PermanentError(f"{error} at {where}") from None


def _preferred_away_from(labels: dict[str, str], *, weight: int) -> dict[str, Any]:
    return {
        "weight": weight,
        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": labels}},
    }


def _is_ready(deployment: KubeObject | None) -> bool:
    if deployment is None:
        return False
    wanted = deployment["spec"].get("replicas", 1)
    status = deployment.get("status", {})
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        and status.get("readyReplicas", 0) == wanted
        and status.get("updatedReplicas", 0) == wanted
    )


def _readiness(deployment: KubeObject | None) -> str:
    if deployment is None:
        return "Deployment not found"
    status = deployment.get("status", {})
    return f"{status.get('readyReplicas', 0)}/{deployment['spec'].get('replicas', 1)} replicas ready"
