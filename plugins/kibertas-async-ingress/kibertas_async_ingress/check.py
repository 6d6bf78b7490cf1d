"""The ``ingress`` check: a web server behind an Ingress answers, end to end, at its public host name.

Steps, each named as reports show it:

1. ``check options``: a host name is set (unless DNS and HTTP are both skipped) and no other cluster of
   this run uses the same one (their external-dns would fight over one record).
2. ``create namespace``; ``deploy web server`` (1 replica, port 80) until Ready, watched.
3. ``create service`` (ClusterIP 80 → the pod's ``http`` port); ``create ingress`` (class, host, path
   ``/``, the AWS Load Balancer Controller annotations for class ``alb``, external-dns's hostname
   annotation, then the user's annotations).
4. ``wait for load balancer``: the ingress controller writes an address (IP or host name) into the
   Ingress's status, watched.
5. ``resolve host``: the host resolves, through the configured resolver, to that address (directly, or
   through a CNAME chain to the load balancer's host name), polled with backoff.
6. ``http request``: ``GET <scheme>://<host>[:<port>]<path>`` to the verified address answers the
   expected status, retried with backoff.

Everything created is deleted afterwards (last created first), whatever happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kibertas_async import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    INGRESSCLASSES,
    INGRESSES,
    SERVICES,
    WORKLOAD_READ,
    Check,
    CheckContext,
    CheckFailed,
    Permission,
    PollState,
    TemporaryError,
    format_duration,
    report_addon_version,
)
from kibertas_async_ingress import options as opt

if TYPE_CHECKING:
    from kibertas_async import KubeObject, OptionValues
    from kibertas_async_ingress.probes import DnsResolver, HttpAnswer, Resolution

EXTERNAL_DNS_HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"
DEPLOYMENT_TIMEOUT = 300.0
"""Seconds the web server's Deployment may take to become Ready (image pull and start on a real node)."""

ALB_ANNOTATIONS = {
    "alb.ingress.kubernetes.io/scheme": "internet-facing",
    "alb.ingress.kubernetes.io/target-type": "ip",
    "alb.ingress.kubernetes.io/backend-protocol": "HTTP",
    "alb.ingress.kubernetes.io/healthcheck-protocol": "HTTP",
    "alb.ingress.kubernetes.io/healthcheck-path": "/",
    "alb.ingress.kubernetes.io/healthcheck-interval-seconds": "5",
    "alb.ingress.kubernetes.io/healthcheck-timeout-seconds": "2",
    "alb.ingress.kubernetes.io/healthy-threshold-count": "2",
    "alb.ingress.kubernetes.io/success-codes": "200",
}
"""What the AWS Load Balancer Controller needs for a target group of pod IPs with fast health checks."""

CLAIMED_HOSTNAMES = "ingress.claimed-hostnames"
"""The run-state key of host name → cluster: two clusters of one run publishing the same name would fight
over one DNS record, and one of them would then "pass" with the other's load balancer."""


@dataclass(frozen=True)
class LoadBalancerAddress:
    """What the ingress controller wrote into ``status.loadBalancer.ingress``."""

    ips: tuple[str, ...]
    hostnames: tuple[str, ...]

    def __str__(self) -> str:
        return ", ".join((*self.ips, *self.hostnames))

    @classmethod
    def of(cls, ingress: KubeObject | None) -> LoadBalancerAddress | None:
        """The Ingress's address, or ``None`` while it has none."""
        entries = ((ingress or {}).get("status") or {}).get("loadBalancer", {}).get("ingress") or []
        ips = tuple(str(entry["ip"]) for entry in entries if entry.get("ip"))
        hostnames = tuple(str(entry["hostname"]).rstrip(".").lower() for entry in entries if entry.get("hostname"))
        return cls(ips, hostnames) if ips or hostnames else None


@dataclass(frozen=True)
class IngressSettings:
    """This cluster's option values, read once."""

    hostname: str
    ingress_class: str
    name: str
    image: str
    annotations: dict[str, str]
    nameservers: tuple[opt.Nameserver, ...]
    skip_dns: bool
    skip_http: bool
    url: str
    expected_status: int
    address_timeout: float
    dns_timeout: float
    http_timeout: float

    @classmethod
    def read(cls, values: OptionValues) -> IngressSettings:
        """Collect the options; the URL is built from scheme, host, port and path."""
        scheme, port = values[opt.HTTP_SCHEME], values[opt.HTTP_PORT]
        default_port = 443 if scheme == "https" else 80
        netloc = values[opt.HOSTNAME] if port in (None, default_port) else f"{values[opt.HOSTNAME]}:{port}"
        return cls(
            hostname=values[opt.HOSTNAME],
            ingress_class=values[opt.INGRESS_CLASS],
            name=values[opt.RESOURCE_NAME],
            image=values[opt.IMAGE],
            annotations=values[opt.ANNOTATIONS],
            nameservers=values[opt.NAMESERVERS],
            skip_dns=values[opt.SKIP_DNS],
            skip_http=values[opt.SKIP_HTTP],
            url=f"{scheme}://{netloc}{values[opt.HTTP_PATH]}",
            expected_status=values[opt.EXPECTED_STATUS],
            address_timeout=values[opt.ADDRESS_TIMEOUT],
            dns_timeout=values[opt.DNS_TIMEOUT],
            http_timeout=values[opt.HTTP_TIMEOUT],
        )


class IngressCheck(Check):
    """Proves the ingress controller, external-dns and the DNS zone serve an Ingress end to end."""

    name = "ingress"
    description = "An Ingress gets a load balancer, its host resolves to it, and HTTP answers through it."
    tags = frozenset({"ingress", "dns", "network"})
    timeout = 900.0
    permissions = (
        Permission("apps", ("deployments",), ("create", "delete", "get", "list", "watch")),
        # get: ctx.create looks for the Service before retrying a POST whose answer was lost.
        Permission("", ("services",), ("create", "delete", "get")),
        Permission("networking.k8s.io", ("ingresses",), ("create", "delete", "get", "list", "watch")),
        Permission("networking.k8s.io", ("ingressclasses",), ("get",)),
        Permission("discovery.k8s.io", ("endpointslices",), ("list",)),
        WORKLOAD_READ,  # the ingress controller's and external-dns's versions
    )
    options = opt.ALL_OPTIONS
    creates = ("Namespace ingress-test-<date>-<random>", "Deployment <name>", "Service <name>", "Ingress <name>")

    async def run(self, ctx: CheckContext) -> None:
        """The steps listed in the module docstring."""
        settings = IngressSettings.read(ctx.options)
        await report_addon_version(ctx, "ingress controller", ctx.options[opt.CONTROLLER_WORKLOAD])
        await report_addon_version(ctx, "external-dns", ctx.options[opt.EXTERNAL_DNS_WORKLOAD])
        async with ctx.step("check options"):
            self._check_options(ctx, settings)
        async with ctx.step("create namespace"):
            namespace = await ctx.namespace()
        async with ctx.step("deploy web server", timeout=DEPLOYMENT_TIMEOUT):
            await ctx.create(DEPLOYMENTS, deployment_manifest(settings), namespace)
            await ctx.wait_for(DEPLOYMENTS, settings.name, namespace, _deployment_ready, progress=_deployment_progress)
        async with ctx.step("create service"):
            await ctx.create(SERVICES, service_manifest(settings), namespace)
        async with ctx.step("create ingress"):
            await ctx.create(INGRESSES, ingress_manifest(settings), namespace)
        async with ctx.step("wait for load balancer"):
            address = await self._wait_for_address(ctx, settings, namespace)
        ctx.fact("load balancer", address)
        addresses: tuple[str, ...] = ()
        if not settings.skip_dns:
            async with ctx.step("resolve host"):
                resolution = await self._wait_for_dns(ctx, settings, address)
            ctx.fact("dns", resolution.describe())
            addresses = resolution.addresses
        if not settings.skip_http:
            async with ctx.step("http request"):
                status = await self._wait_for_http(ctx, settings, namespace, address, addresses)
            ctx.fact("http", f"GET {settings.url} -> {status}")

    def _check_options(self, ctx: CheckContext, settings: IngressSettings) -> None:
        if not settings.hostname:
            if settings.skip_dns and settings.skip_http:
                return
            ctx.fail(
                "no host name to check DNS and HTTP with: set ingress-hostname (EXTERNAL_HOSTNAME) for this "
                "cluster, or turn on ingress-skip-dns and ingress-skip-http"
            )
        claimed: dict[str, str] = ctx.run_state.setdefault(CLAIMED_HOSTNAMES, {})
        owner = claimed.setdefault(settings.hostname, ctx.cluster.name)
        if owner != ctx.cluster.name:
            ctx.fail(
                f"host name {settings.hostname} is also checked on cluster {owner} in this run; give each "
                "cluster its own (clusters.<name>.ingress-hostname in the config file)"
            )

        async def release() -> None:
            claimed.pop(settings.hostname, None)

        ctx.cleanup.push(f"release host name {settings.hostname}", release)

    async def _wait_for_address(
        self, ctx: CheckContext, settings: IngressSettings, namespace: str
    ) -> LoadBalancerAddress:
        async def no_address(_ingress: KubeObject | None) -> str:
            """Whose fault: a class nobody serves, or a controller that did not act."""
            ingress_class = await ctx.kube.get(INGRESSCLASSES, settings.ingress_class)
            if ingress_class is None:
                why = f"IngressClass {settings.ingress_class} does not exist"
            else:
                controller = (ingress_class.get("spec") or {}).get("controller", "?")
                why = f"the controller of IngressClass {settings.ingress_class} ({controller}) did not give it one"
            return (
                f"Ingress {namespace}/{settings.name} got no load-balancer address within "
                f"{format_duration(settings.address_timeout)}: {why}"
            )

        ingress = await ctx.wait_for(
            INGRESSES,
            settings.name,
            namespace,
            lambda obj: LoadBalancerAddress.of(obj) is not None,
            progress=lambda obj: str(LoadBalancerAddress.of(obj) or "no address in status.loadBalancer yet"),
            timeout=settings.address_timeout,
            fail=no_address,
        )
        address = LoadBalancerAddress.of(ingress)
        assert address is not None
        return address

    async def _wait_for_dns(
        self, ctx: CheckContext, settings: IngressSettings, address: LoadBalancerAddress
    ) -> Resolution:
        from kibertas_async_ingress.probes import DnsResolver, ProbeFailed

        try:
            resolver = DnsResolver(settings.nameservers)
        except ProbeFailed as error:
            ctx.fail(str(error))

        async def attempt() -> Resolution:
            try:
                resolution = await resolver.resolve(settings.hostname)
            except ProbeFailed as error:
                raise TemporaryError(str(error) + await _unresolvable_load_balancer(address, resolver)) from None
            if not await _points_at(resolution, address, resolver):
                raise TemporaryError(f"{resolution.describe()}, not to the load balancer ({address})")
            return resolution

        def unresolved(state: PollState) -> str:
            return (
                f"{settings.hostname} did not resolve to the load balancer ({address}) via {resolver.servers} "
                f"within {state.waited}: {_last_seen(state)}"
            )

        return await ctx.poll(attempt, timeout=settings.dns_timeout, fail=unresolved, first_delay=0.5, max_delay=5.0)

    async def _wait_for_http(
        self,
        ctx: CheckContext,
        settings: IngressSettings,
        namespace: str,
        address: LoadBalancerAddress,
        addresses: tuple[str, ...],
    ) -> int:
        from kibertas_async_ingress.probes import DnsResolver, ProbeFailed, http_get

        targets = addresses
        if not targets:  # DNS skipped: go straight to the load balancer, as a client with --resolve would
            try:
                targets = await _load_balancer_ips(address, DnsResolver(settings.nameservers))
            except ProbeFailed as error:
                ctx.fail(str(error))
        if not targets:
            ctx.fail(f"the load balancer's address {address} does not resolve; nowhere to send GET {settings.url}")

        async def attempt() -> int:
            try:
                answer = await http_get(settings.url, settings.hostname, targets)
            except ProbeFailed as error:
                raise TemporaryError(str(error)) from None
            if answer.status != settings.expected_status:
                raise _UnexpectedAnswer(answer)
            return answer.status

        async def never_expected(state: PollState) -> str:
            if not isinstance(state.error, _UnexpectedAnswer):
                return (
                    f"GET {settings.url} never answered {settings.expected_status} "
                    f"within {state.waited}: {_last_seen(state)}"
                )
            last = state.error.answer
            endpoints = await _describe_endpoints(ctx, namespace, settings.name)
            body = f" ({last.body_excerpt})" if last.body_excerpt else ""
            return (
                f"GET {settings.url} answered {last.status} {last.reason}{body} from {last.peer}, expected "
                f"{settings.expected_status}, for {state.waited}; {endpoints}"
            )

        return await ctx.poll(
            attempt, timeout=settings.http_timeout, fail=never_expected, first_delay=0.5, max_delay=5.0
        )


class _UnexpectedAnswer(TemporaryError):
    """An HTTP answer, but not the expected status: tried again; the last one explains the failure."""

    def __init__(self, answer: HttpAnswer) -> None:
        super().__init__(f"{answer.status} {answer.reason} from {answer.peer}")
        self.answer = answer


def _last_seen(state: PollState) -> str:
    """The last attempt's message; ``no answer yet`` when none finished (a first lookup still running)."""
    return state.error.message if state.error is not None else "no answer yet"


async def _points_at(resolution: Resolution, address: LoadBalancerAddress, resolver: DnsResolver) -> bool:
    """Whether every address the host resolves to belongs to the load balancer.

    For a load balancer known by host name (e.g. an ELB), a CNAME chain through that name counts, and so
    do shared addresses (an alias record, like Route 53's, resolves straight to the ELB's addresses).
    """
    if address.ips and set(resolution.addresses) <= set(address.ips):
        return True
    if set(address.hostnames) & set(resolution.cnames):
        return True
    lb_ips = set(await _load_balancer_ips(LoadBalancerAddress((), address.hostnames), resolver))
    return bool(lb_ips & set(resolution.addresses))


async def _unresolvable_load_balancer(address: LoadBalancerAddress, resolver: DnsResolver) -> str:
    """``; the load balancer's host name does not resolve either: ...`` when the load balancer is known by
    host names only and none resolves (a CNAME to it then fails as NXDOMAIN of the host), else ``""``."""
    from kibertas_async_ingress.probes import ProbeFailed

    if address.ips or not address.hostnames:
        return ""
    problems: list[str] = []
    for hostname in address.hostnames:
        try:
            await resolver.resolve(hostname)
        except ProbeFailed as error:
            problems.append(str(error))
            continue
        return ""
    return f"; the load balancer's host name does not resolve either: {'; '.join(problems)}"


async def _load_balancer_ips(address: LoadBalancerAddress, resolver: DnsResolver) -> tuple[str, ...]:
    """The load balancer's IPs, resolving its host names (unresolvable ones are left out)."""
    from kibertas_async_ingress.probes import ProbeFailed

    ips = list(address.ips)
    for hostname in address.hostnames:
        try:
            ips.extend((await resolver.resolve(hostname)).addresses)
        except ProbeFailed:
            continue
    return tuple(ips)


async def _describe_endpoints(ctx: CheckContext, namespace: str, service: str) -> str:
    """What the Service's EndpointSlices say (for the failure message): a 503 with no ready endpoint is the
    backend's fault, not the load balancer's."""
    slices = await ctx.kube.list(ENDPOINTSLICES, namespace, label_selector=f"kubernetes.io/service-name={service}")
    endpoints = [endpoint for item in slices["items"] for endpoint in item.get("endpoints") or []]
    # The API says a missing "ready" condition means ready.
    ready = sum(1 for endpoint in endpoints if (endpoint.get("conditions") or {}).get("ready") is not False)
    where = f"Service {namespace}/{service}"
    if not slices["items"]:
        return f"{where} has no EndpointSlice"
    return f"{where} has {ready} ready of {len(endpoints)} endpoints in {len(slices['items'])} EndpointSlice(s)"


def _deployment_ready(deployment: KubeObject | None) -> bool:
    if deployment is None:
        raise CheckFailed("the Deployment disappeared while waiting for it")
    status: dict[str, Any] = deployment.get("status") or {}
    for condition in status.get("conditions") or []:
        stuck = condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded"
        failed = condition.get("type") == "ReplicaFailure" and condition.get("status") == "True"
        if stuck or failed:
            raise CheckFailed(f"Deployment {condition.get('reason')}: {condition.get('message')}")
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 1)
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("readyReplicas", 0) >= wanted
    )


def _deployment_progress(deployment: KubeObject | None) -> str:
    if deployment is None:
        return "Deployment not found"
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    return f"{status.get('readyReplicas', 0)}/{wanted} replicas ready"


def deployment_manifest(settings: IngressSettings) -> KubeObject:
    """One replica of the web server, port 80 named ``http``, with a readiness probe on ``/``."""
    labels = {"app.kubernetes.io/name": settings.name}
    return {
        "metadata": {"name": settings.name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # A throwaway web server: no grace period, so its namespace is emptied without waiting.
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "web",
                            "image": settings.image,
                            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 2},
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ],
                },
            },
        },
    }


def service_manifest(settings: IngressSettings) -> KubeObject:
    """ClusterIP port 80 to the pods' ``http`` port."""
    return {
        "metadata": {"name": settings.name},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": settings.name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def ingress_manifest(settings: IngressSettings) -> KubeObject:
    """Class, host (if any), path ``/`` to the Service; ALB and external-dns annotations, then the user's."""
    annotations = dict(ALB_ANNOTATIONS) if settings.ingress_class == "alb" else {}
    rule: dict[str, Any] = {
        "http": {
            "paths": [
                {
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": settings.name, "port": {"number": 80}}},
                }
            ]
        }
    }
    if settings.hostname:
        annotations[EXTERNAL_DNS_HOSTNAME] = settings.hostname
        rule["host"] = settings.hostname
    return {
        "metadata": {"name": settings.name, "annotations": {**annotations, **settings.annotations}},
        "spec": {"ingressClassName": settings.ingress_class, "rules": [rule]},
    }
