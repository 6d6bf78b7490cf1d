"""A sandbox ingress controller: gives Ingresses of one class an address on loopback and serves them there.

It is a stand-in for a cloud load balancer controller (the AWS Load Balancer Controller, ingress-nginx),
run by the sandbox as its own process, one per IngressClass::

    python -m kibertas_async_ingress.sandbox_controller --kubeconfig K --ingress-class nginx \\
        --address 127.77.1.1 --port 80
    python -m kibertas_async_ingress.sandbox_controller --kubeconfig K --ingress-class alb \\
        --address 127.77.1.2 --port 80 --publish hostname --zone-state .../bind9/zone.json

What it does, like a real controller: it watches every Ingress of its IngressClass and publishes where
the load balancer is in ``status.loadBalancer.ingress[0]``:

- ``--publish ip`` (ingress-nginx behind a bare-metal LoadBalancer Service): ``ip: <address>``;
- ``--publish hostname`` (an AWS ALB): ``hostname: k8s-<ns>-<name>-<hash>.elb.<zone>``, a name of this
  Ingress's own (the hash is of its uid, so a new Ingress is a new load balancer), after writing its A
  record (``<address>``, TTL 5) into the cluster's BIND9 zone with the zone's TSIG key (RFC 2136), as AWS
  makes an ALB's DNS name resolve; the record is deleted with the Ingress. The annotation
  :data:`LOAD_BALANCER_DNS_ANNOTATION` ``: absent`` (a stand-in-only fault, for tests) publishes the name
  without the record: a load balancer whose DNS name does not resolve.

It answers HTTP on ``<address>:<port>`` by the request's Host header and path, through the Ingress rules,
and proxies nothing: it answers ``200`` only while the backend Service's EndpointSlices (maintained by
the real controller-manager) list a ready endpoint, ``503`` when they list none, and ``404`` for a host
no Ingress of its class serves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from kibertas_async import (
    ENDPOINTSLICES,
    INGRESSES,
    ClusterTarget,
    Informer,
    KubeApiError,
    KubeClient,
    KubeObject,
    KubeUnavailable,
    connect,
)
from kibertas_async_ingress.sandbox import LOAD_BALANCER_SUBDOMAIN

CLASS_ANNOTATION = "kubernetes.io/ingress.class"
LOAD_BALANCER_DNS_ANNOTATION = "sandbox.kibertas-async.io/load-balancer-dns"
"""Stand-in-only fault switch: ``absent`` publishes the load balancer's host name without its A record."""


def log(event: str, **fields: object) -> None:
    """One JSON line on stdout (the sandbox sends it to the add-on's log file)."""
    print(json.dumps({"time": round(time.time(), 3), "event": event, **fields}), flush=True)


@dataclass(frozen=True)
class Backend:
    """Where one Ingress rule path sends requests."""

    namespace: str
    ingress: str
    service: str


class IngressTable:
    """The Ingresses of one class, by namespace and name, and the routing over their rules."""

    def __init__(self, ingress_class: str) -> None:
        self.ingress_class = ingress_class
        self._ingresses: dict[tuple[str, str], KubeObject] = {}

    def is_ours(self, ingress: KubeObject) -> bool:
        """Whether the Ingress names our class (field, or the legacy annotation)."""
        named = (ingress.get("spec") or {}).get("ingressClassName")
        annotated = (ingress["metadata"].get("annotations") or {}).get(CLASS_ANNOTATION)
        return self.ingress_class in (named, annotated)

    def replace_all(self, ingresses: list[KubeObject]) -> None:
        """Start over from a fresh list."""
        self._ingresses = {}
        for ingress in ingresses:
            self.apply("ADDED", ingress)

    def apply(self, event_type: str, ingress: KubeObject) -> None:
        """Apply one watch event."""
        key = (ingress["metadata"]["namespace"], ingress["metadata"]["name"])
        if event_type == "DELETED" or not self.is_ours(ingress):
            self._ingresses.pop(key, None)
        else:
            self._ingresses[key] = ingress

    def route(self, host: str, path: str) -> Backend | None:
        """The backend of the longest matching path of a rule for ``host`` (exact or ``*.`` wildcard)."""
        best: tuple[int, Backend] | None = None
        for (namespace, name), ingress in self._ingresses.items():
            for rule in (ingress.get("spec") or {}).get("rules") or []:
                if not _host_matches(rule.get("host"), host):
                    continue
                for rule_path in (rule.get("http") or {}).get("paths") or []:
                    prefix = rule_path.get("path") or "/"
                    exact = rule_path.get("pathType") == "Exact"
                    if (path != prefix) if exact else not _prefix_matches(prefix, path):
                        continue
                    service = ((rule_path.get("backend") or {}).get("service") or {}).get("name")
                    if service and (best is None or len(prefix) > best[0]):
                        best = (len(prefix), Backend(namespace, name, service))
        return None if best is None else best[1]


def _host_matches(rule_host: str | None, host: str) -> bool:
    if not rule_host:
        return True
    if rule_host.startswith("*."):
        return host.endswith(rule_host[1:]) and host.count(".") == rule_host.count(".")
    return rule_host.lower() == host


def _prefix_matches(prefix: str, path: str) -> bool:
    trimmed = prefix.rstrip("/")
    return not trimmed or path == trimmed or path.startswith(trimmed + "/")


async def ready_endpoints(client: KubeClient, namespace: str, service: str) -> list[str]:
    """Addresses of the Service's ready endpoints, read from its EndpointSlices."""
    slices = await client.list(ENDPOINTSLICES, namespace, label_selector=f"kubernetes.io/service-name={service}")
    return [
        address
        for endpoint_slice in slices["items"]
        for endpoint in endpoint_slice.get("endpoints") or []
        # The API says a missing "ready" means ready.
        if (endpoint.get("conditions") or {}).get("ready") is not False
        for address in endpoint.get("addresses") or []
    ]


@dataclass(frozen=True)
class ZoneWriter:
    """Writes and deletes load balancers' A records in the cluster's BIND9 zone (RFC 2136, TSIG-signed).

    Read from the zone server add-on's ``zone.json`` (name, address, port and TSIG key).
    """

    zone: str
    server: str
    port: int
    key_name: str
    key_secret: str
    key_algorithm: str

    @classmethod
    def load(cls, path: Path) -> ZoneWriter:
        """The zone described by ``path`` (the bind9 add-on's ``zone.json``)."""
        data = json.loads(path.read_text())
        return cls(
            data["name"],
            data["address"],
            int(data["port"]),
            data["key_name"],
            data["key_secret"],
            data["key_algorithm"],
        )

    def hostname(self, ingress: KubeObject) -> str:
        """``k8s-<namespace>-<name>-<hash of uid>.elb.<zone>``: the load balancer's own DNS name, like an
        ALB's ``k8s-<namespace>-<name>-<hash>-<id>.<region>.elb.amazonaws.com``."""
        metadata = ingress["metadata"]
        digest = hashlib.sha256(str(metadata.get("uid", "")).encode()).hexdigest()[:10]
        parts = [_label_part(metadata["namespace"]), _label_part(metadata["name"]), digest]
        return f"k8s-{'-'.join(parts)}.{LOAD_BALANCER_SUBDOMAIN}.{self.zone}"

    async def set(self, hostname: str, address: str | None) -> None:
        """Make ``hostname`` resolve to ``address`` (TTL 5), or to nothing with ``None``.

        :raises OSError, dns.exception.DNSException: BIND is unreachable or refused the update.
        """
        import dns.asyncquery
        import dns.name
        import dns.rcode
        import dns.tsigkeyring
        import dns.update

        keyring = dns.tsigkeyring.from_text({self.key_name: (self.key_algorithm, self.key_secret)})
        update = dns.update.UpdateMessage(
            self.zone + ".", keyring=keyring, keyname=dns.name.from_text(self.key_name), keyalgorithm=self.key_algorithm
        )
        if address is None:
            update.delete(hostname + ".")
        else:
            update.replace(hostname + ".", 5, "A", address)
        response = await dns.asyncquery.tcp(update, self.server, port=self.port, timeout=5.0)
        if response.rcode() != dns.rcode.NOERROR:
            raise OSError(f"BIND refused the update of {hostname}: {dns.rcode.to_text(response.rcode())}")


def _label_part(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())[:8] or "x"


class Controller:
    """Keeps Ingress statuses and the routing table current, and serves HTTP."""

    def __init__(self, client: KubeClient, table: IngressTable, address: str, zone: ZoneWriter | None = None) -> None:
        self.client = client
        self.table = table
        self.address = address
        self.zone = zone
        """Set: publish a host name per Ingress (an ALB's shape) instead of :attr:`address`."""
        self._records: dict[str, str | None] = {}
        """Host name → the address its A record holds (``None``: deleted), as this process wrote it."""

    async def publish_address(self, ingress: KubeObject) -> None:
        """Write our address (or the Ingress's load-balancer host name, with its DNS record) into the
        Ingress's status unless it is there already."""
        namespace, name = ingress["metadata"]["namespace"], ingress["metadata"]["name"]
        if self.zone is None:
            wanted = [{"ip": self.address}]
        else:
            hostname = self.zone.hostname(ingress)
            absent = (ingress["metadata"].get("annotations") or {}).get(LOAD_BALANCER_DNS_ANNOTATION) == "absent"
            if not await self._record(hostname, None if absent else self.address, f"{namespace}/{name}"):
                return  # retried on the Ingress's next change, or the informer's next relist
            wanted = [{"hostname": hostname}]
        current = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        if current == wanted:
            return
        try:
            await self.client.request(
                "PATCH",
                INGRESSES.path(namespace, name) + "/status",
                body={"status": {"loadBalancer": {"ingress": wanted}}},
                content_type="application/merge-patch+json",
            )
        except (KubeApiError, KubeUnavailable) as error:
            # Deleted meanwhile (404): nothing to do. Anything else is logged, not raised, so one failed
            # write does not stop the watch; the Ingress's next change publishes again.
            if not (isinstance(error, KubeApiError) and error.status == 404):
                log("status.failed", ingress=f"{namespace}/{name}", error=str(error))
            return
        log("status.published", ingress=f"{namespace}/{name}", address=wanted[0])

    async def forget(self, ingress: KubeObject) -> None:
        """An Ingress of ours is gone: so is its load balancer's DNS name (host-name mode)."""
        if self.zone is not None:
            metadata = ingress["metadata"]
            await self._record(self.zone.hostname(ingress), None, f"{metadata['namespace']}/{metadata['name']}")

    async def _record(self, hostname: str, address: str | None, ingress: str) -> bool:
        """Make ``hostname``'s A record hold ``address`` (``None``: none); whether it does now."""
        import dns.exception

        assert self.zone is not None
        if self._records.get(hostname, "unknown") == address:
            return True
        try:
            await self.zone.set(hostname, address)
        except (OSError, dns.exception.DNSException) as error:
            log("dns.failed", ingress=ingress, hostname=hostname, error=str(error) or type(error).__name__)
            return False
        self._records[hostname] = address
        log("dns.published" if address else "dns.deleted", ingress=ingress, hostname=hostname, address=address)
        return True

    async def sync_forever(self) -> None:
        """Follow all Ingresses with an informer: apply each change to the table, publish on ours.

        The informer retries what is temporary (an expired version, throttling, an unreachable server, a
        stream the server ends); any other API error is logged and the informer resumed after a backoff.
        """
        informer = Informer(self.client, INGRESSES)
        failures = 0
        while True:
            try:
                async with contextlib.aclosing(informer.updates()) as updates:
                    async for changes in updates:
                        failures = 0
                        for change in changes:
                            self.table.apply(change.type, change.object)
                            if not self.table.is_ours(change.object):
                                continue
                            if change.type == "DELETED":
                                await self.forget(change.object)
                            else:
                                await self.publish_address(change.object)
            except KubeApiError as error:
                log("watch.failed", error=str(error))
                failures += 1
                await asyncio.sleep(min(5.0, 0.2 * 2**failures) * random.uniform(0.5, 1.0))

    async def handle(self, request: web.Request) -> web.Response:
        """Route by Host and path, and log the answer (the sandbox's access log)."""
        response = await self.answer(request)
        log("http", host=request.host, path=request.path, status=response.status, body=response.text)
        return response

    async def answer(self, request: web.Request) -> web.Response:
        """200 with ready endpoints, 503 without, 404 for unknown hosts."""
        host = (request.host or "").rsplit(":", 1)[0].lower().rstrip(".")
        backend = self.table.route(host, request.path)
        if backend is None:
            return web.Response(status=404, text=f"no Ingress of class {self.table.ingress_class} serves {host}\n")
        try:
            endpoints = await ready_endpoints(self.client, backend.namespace, backend.service)
        except (KubeApiError, KubeUnavailable) as error:
            return web.Response(status=502, text=f"cannot read the endpoints of {backend.service}: {error}\n")
        service = f"{backend.namespace}/{backend.service}"
        if not endpoints:
            return web.Response(status=503, text=f"Service {service} has no ready endpoints\n")
        return web.Response(
            status=200,
            text=f"sandbox ingress controller: Service {service} has ready endpoints {', '.join(endpoints)}\n",
        )


async def serve(args: argparse.Namespace) -> None:
    """Connect, start the HTTP server, then sync Ingresses until killed."""
    zone = ZoneWriter.load(Path(args.zone_state)) if args.publish == "hostname" else None
    client = await connect(ClusterTarget(name=args.cluster, kubeconfig=args.kubeconfig))
    controller = Controller(client, IngressTable(args.ingress_class), args.address, zone)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", controller.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.address, args.port).start()
    log("serving", address=args.address, port=args.port, ingress_class=args.ingress_class, publish=args.publish)
    try:
        await controller.sync_forever()
    finally:
        await runner.cleanup()
        await client.aclose()


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m kibertas_async_ingress.sandbox_controller", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--cluster", default="sandbox", help="name used in errors")
    parser.add_argument("--ingress-class", required=True)
    parser.add_argument("--address", required=True, help="loopback address to serve on and publish")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument(
        "--publish",
        choices=("ip", "hostname"),
        default="ip",
        help="what goes into the Ingress status: the address, or a DNS name per Ingress (as an ALB)",
    )
    parser.add_argument("--zone-state", help="the bind9 add-on's zone.json (needed with --publish hostname)")
    args = parser.parse_args(argv)
    if args.publish == "hostname" and not args.zone_state:
        parser.error("--publish hostname needs --zone-state")
    return args


def main(argv: list[str] | None = None) -> Any:
    """Run until SIGTERM/SIGINT."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
