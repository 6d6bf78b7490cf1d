"""Sandbox add-ons for the ingress check: a real DNS zone, the real external-dns, a stand-in load balancer.

Per sandbox cluster, in this order:

1. :class:`ZoneServerAddon`: BIND9 (Debian's ``named``) serving the zone ``<cluster>.sandbox.test`` on
   ``127.0.0.1:<free port>``, accepting TSIG-signed dynamic updates and zone transfers.
2. :class:`ExternalDnsAddon`: the real external-dns, built from the Go module proxy, with its ``rfc2136``
   provider and ``ingress`` source: it publishes every Ingress host of the cluster in that zone (an A
   record to the Ingress's address, plus its TXT ownership records). Names under
   ``unmanaged.<zone>`` are excluded, so tests can write records there that external-dns never touches.
   Load balancers' names (``elb.<zone>``) are excluded too: the ingress controller writes those.
3. :class:`IngressControllerAddon`: two :mod:`kibertas_async_ingress.sandbox_controller` processes, each on
   a loopback address of its own (``127.x.y.z``, port 80), and the IngressClasses they serve: ``alb``
   publishes a host name per Ingress (``k8s-...elb.<zone>``, its A record written into the zone), as an
   AWS ALB does; ``nginx`` publishes its IP address, as ingress-nginx behind a bare-metal load balancer.

Each add-on's ``cluster_settings`` give the check its per-cluster options (host name, nameserver, class),
written by ``sandbox up`` into the run config file.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from kibertas_async.sandbox.addons import AddonContext
from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.gobuild import go_command
from kibertas_async.sandbox.processes import ProcessSpec

EXTERNAL_DNS_MODULE = "sigs.k8s.io/external-dns"
EXTERNAL_DNS_VERSION = "v0.21.0"
"""v0.22.0 needs modules the Go proxy no longer serves (egoscale v3.1.44, an openshift/api pseudo-version)
and v0.23.0 needs Go 1.27: v0.21.0 is the newest that builds here."""

ZONE_SUFFIX = "sandbox.test"
UNMANAGED_LABEL = "unmanaged"
"""Names under ``unmanaged.<zone>`` are excluded from external-dns (``--exclude-domains``)."""
LOAD_BALANCER_SUBDOMAIN = "elb"
"""Load balancers' host names live under ``elb.<zone>``: the ingress controller writes them, and
external-dns is told to leave them alone (``--exclude-domains``)."""
INGRESS_CLASS = "alb"
INGRESS_CONTROLLER = "ingress.k8s.aws/alb"
"""The AWS Load Balancer Controller's name, so the sandbox's IngressClass looks like an EKS cluster's."""
IP_INGRESS_CLASS = "nginx"
IP_INGRESS_CONTROLLER = "k8s.io/ingress-nginx"
"""ingress-nginx's controller name: the class whose load balancer is published as an IP address."""
HTTP_PORT = 80


@dataclass(frozen=True)
class ControllerSpec:
    """One sandbox ingress controller: the IngressClass it serves and what it publishes."""

    ingress_class: str
    controller: str
    publish: str
    """``hostname`` (a DNS name per Ingress, in the zone) or ``ip`` (its loopback address)."""
    process: str
    """Its process name in ``sandbox status``, and its log file's stem."""


CONTROLLERS = (
    ControllerSpec(INGRESS_CLASS, INGRESS_CONTROLLER, "hostname", "ingress-controller"),
    ControllerSpec(IP_INGRESS_CLASS, IP_INGRESS_CONTROLLER, "ip", "ingress-nginx"),
)

_ZONE_STATE = "zone.json"
_POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class Zone:
    """One cluster's DNS zone: where BIND serves it, and the TSIG key allowed to change it."""

    name: str
    """Without the trailing dot, e.g. ``sandbox-1.sandbox.test``."""
    port: int
    key_name: str
    key_secret: str
    """Base64, as BIND and dnspython take it."""
    key_algorithm: str = "hmac-sha256"
    address: str = "127.0.0.1"

    @property
    def nameserver(self) -> str:
        """``127.0.0.1:PORT``: the ``ingress-nameservers`` value."""
        return f"{self.address}:{self.port}"

    @property
    def unmanaged(self) -> str:
        """The subdomain external-dns does not manage."""
        return f"{UNMANAGED_LABEL}.{self.name}"

    @property
    def load_balancers(self) -> str:
        """The subdomain of load balancers' host names (written by the ingress controller, not external-dns)."""
        return f"{LOAD_BALANCER_SUBDOMAIN}.{self.name}"


def load_zone(cluster_directory: Path) -> Zone:
    """The zone of a running sandbox cluster (for tests that write records with its TSIG key)."""
    data = json.loads((cluster_directory / "addons" / ZoneServerAddon.name / _ZONE_STATE).read_text())
    return Zone(**data)


class ZoneServerAddon:
    """BIND9 as a foreground process per cluster, authoritative for ``<cluster>.sandbox.test``."""

    name = "bind9"

    def __init__(self) -> None:
        self.zones: dict[str, Zone] = {}
        """Cluster name → its zone, for :class:`ExternalDnsAddon` (started right after)."""

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """Write ``named.conf`` and the zone file; return ``named -g`` (foreground, logs to its log file)."""
        named = shutil.which("named") or shutil.which("named", path="/usr/sbin:/usr/local/sbin")
        if named is None:
            raise SandboxError("BIND9 is not installed (`apt-get install -y bind9`): the ingress add-ons need named")
        zone = Zone(
            name=f"{context.cluster_name}.{ZONE_SUFFIX}",
            port=context.allocate_port(),
            key_name=f"external-dns-{context.cluster_name}",
            key_secret=base64.b64encode(secrets.token_bytes(32)).decode(),
        )
        self.zones[context.cluster_name] = zone
        directory = context.work_dir
        for leftover in directory.glob("*.jnl"):  # a restarted sandbox starts from an empty zone
            leftover.unlink()
        (directory / f"{zone.name}.db").write_text(_zone_file(zone))
        (directory / "named.conf").write_text(_named_conf(zone, directory))
        (directory / _ZONE_STATE).write_text(json.dumps(asdict(zone), indent=2))
        argv = (named, "-g", "-4", "-n", "1", "-c", str(directory / "named.conf"))
        return [ProcessSpec(f"{context.cluster_name}/{self.name}", argv, directory / "named.log")]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Return once BIND answers the zone's SOA."""
        import dns.exception
        import dns.message
        import dns.query
        import dns.rcode

        zone = self.zones[context.cluster_name]
        query = dns.message.make_query(zone.name + ".", "SOA")
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = dns.query.udp(query, zone.address, port=zone.port, timeout=1.0)
                if response.rcode() == dns.rcode.NOERROR and response.answer:
                    return
            except (dns.exception.DNSException, OSError):
                pass
            if time.monotonic() >= deadline:
                raise SandboxError(
                    f"{context.cluster_name}: BIND9 did not serve {zone.name} on port {zone.port} within "
                    f"{timeout:.0f}s; see {context.work_dir / 'named.log'}"
                )
            time.sleep(_POLL_INTERVAL)

    def stop(self, context: AddonContext) -> None:
        """Nothing beyond the process: its files live in the work directory ``down`` removes."""

    def cluster_settings(self, context: AddonContext) -> Mapping[str, object]:
        """The check's host name in this cluster's zone, and BIND as its resolver."""
        zone = self.zones[context.cluster_name]
        return {"ingress-hostname": f"ingress-check.{zone.name}", "ingress-nameservers": zone.nameserver}


class ExternalDnsAddon:
    """The real external-dns (``rfc2136`` provider, ``ingress`` source), writing into the cluster's zone."""

    name = "external-dns"

    def __init__(self, zones: ZoneServerAddon) -> None:
        self._zones = zones
        self._health_urls: dict[str, str] = {}

    def prepare(self, progress: Callable[[str], None]) -> None:
        """Build external-dns (the first time only), before any sandbox start-up deadline runs."""
        build_external_dns(progress)

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """Run external-dns (built by :meth:`prepare`) against this cluster and its zone."""
        binary = build_external_dns()
        zone = self._zones.zones[context.cluster_name]
        metrics_port = context.allocate_port()
        self._health_urls[context.cluster_name] = f"http://127.0.0.1:{metrics_port}/healthz"
        argv = (
            str(binary),
            f"--kubeconfig={context.kubeconfig}",
            "--source=ingress",
            "--provider=rfc2136",
            f"--rfc2136-host={zone.address}",
            f"--rfc2136-port={zone.port}",
            f"--rfc2136-zone={zone.name}",
            f"--rfc2136-tsig-keyname={zone.key_name}",
            f"--rfc2136-tsig-secret={zone.key_secret}",
            f"--rfc2136-tsig-secret-alg={zone.key_algorithm}",
            "--rfc2136-tsig-axfr",
            f"--domain-filter={zone.name}",
            f"--exclude-domains={zone.unmanaged}",
            f"--exclude-domains={zone.load_balancers}",
            "--policy=sync",
            "--registry=txt",
            f"--txt-owner-id={context.cluster_name}",
            # Seconds, not the default minute: a check should not wait for a slow sandbox.
            "--interval=2s",
            "--events",
            "--min-event-sync-interval=1s",
            f"--metrics-address=127.0.0.1:{metrics_port}",
            "--log-level=debug",
        )
        return [ProcessSpec(f"{context.cluster_name}/{self.name}", argv, context.work_dir / "external-dns.log")]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Return once external-dns's ``/healthz`` answers."""
        url = self._health_urls[context.cluster_name]
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() >= deadline:
                raise SandboxError(
                    f"{context.cluster_name}: external-dns did not become healthy within {timeout:.0f}s; "
                    f"see {context.work_dir / 'external-dns.log'}"
                )
            time.sleep(_POLL_INTERVAL)

    def stop(self, context: AddonContext) -> None:
        """Nothing beyond the process: the records go with BIND's work directory."""


def build_external_dns(progress: Callable[[str], None] | None = None) -> Path:
    """external-dns's binary, built from the Go module proxy into the shared cache the first time."""
    return go_command("external-dns", EXTERNAL_DNS_MODULE, EXTERNAL_DNS_VERSION, EXTERNAL_DNS_MODULE, progress=progress)


class IngressControllerAddon:
    """The sandbox ingress controllers (:data:`CONTROLLERS`), each on its own loopback address, and their
    IngressClasses. Both listen on the same port, so the check's ``ingress-http-port`` fits either class."""

    name = "ingress-controller"

    def __init__(self) -> None:
        self._endpoints: dict[str, dict[str, tuple[str, int]]] = {}
        """Cluster → IngressClass → (address, port)."""

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """Pick free loopback addresses (port 80 when we may bind it) and run one controller per class."""
        zone_state = context.work_dir.parent / ZoneServerAddon.name / _ZONE_STATE
        if not zone_state.is_file():
            raise SandboxError(
                f"{context.cluster_name}: the ingress controller needs the {ZoneServerAddon.name} add-on started "
                f"before it (no {zone_state})"
            )
        taken = {address for endpoints in self._endpoints.values() for address, _port in endpoints.values()}
        endpoints: dict[str, tuple[str, int]] = {}
        port: int | None = None
        specs: list[ProcessSpec] = []
        for controller in CONTROLLERS:
            address, port = _free_loopback_endpoint(taken, context, port)
            taken.add(address)
            endpoints[controller.ingress_class] = (address, port)
            argv = [
                sys.executable,
                "-m",
                "kibertas_async_ingress.sandbox_controller",
                f"--kubeconfig={context.kubeconfig}",
                f"--cluster={context.cluster_name}",
                f"--ingress-class={controller.ingress_class}",
                f"--address={address}",
                f"--port={port}",
                f"--publish={controller.publish}",
            ]
            if controller.publish == "hostname":
                argv.append(f"--zone-state={zone_state}")
            log_file = context.work_dir / f"{controller.process}.log"
            specs.append(ProcessSpec(f"{context.cluster_name}/{controller.process}", tuple(argv), log_file))
        self._endpoints[context.cluster_name] = endpoints
        return specs

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Create the IngressClasses, then wait until each controller answers HTTP (404 for an unknown host)."""
        for controller in CONTROLLERS:
            ingress_class = {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "IngressClass",
                "metadata": {"name": controller.ingress_class},
                "spec": {"controller": controller.controller},
            }
            try:
                context.api.create("/apis/networking.k8s.io/v1/ingressclasses", ingress_class)
            except ApiError as error:
                if error.status != 409:
                    raise SandboxError(
                        f"{context.cluster_name}: cannot create IngressClass {controller.ingress_class}: {error}"
                    ) from error
        deadline = time.monotonic() + timeout
        for controller in CONTROLLERS:
            address, port = self._endpoints[context.cluster_name][controller.ingress_class]
            while not _answers_http(address, port):
                if time.monotonic() >= deadline:
                    raise SandboxError(
                        f"{context.cluster_name}: the sandbox ingress controller of class {controller.ingress_class} "
                        f"did not answer on {address}:{port} within {timeout:.0f}s; "
                        f"see {context.work_dir / f'{controller.process}.log'}"
                    )
                time.sleep(_POLL_INTERVAL)

    def stop(self, context: AddonContext) -> None:
        """Nothing beyond the processes: the IngressClasses live in the cluster's data, and the load
        balancers' records in BIND's work directory, which ``down`` removes."""

    def cluster_settings(self, context: AddonContext) -> Mapping[str, object]:
        """The class an EKS cluster would use (``alb``), and the HTTP port when it is not 80."""
        _address, port = self._endpoints[context.cluster_name][INGRESS_CLASS]
        settings: dict[str, object] = {"ingress-class": INGRESS_CLASS}
        if port != HTTP_PORT:
            settings["ingress-http-port"] = port
        return settings


def _answers_http(address: str, port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://{address}:{port}/", timeout=1.0).close()
    except urllib.error.HTTPError:
        return True  # it answered: the 404 of a host no Ingress serves
    except (urllib.error.URLError, OSError):
        return False
    return True


def _free_loopback_endpoint(taken: set[str], context: AddonContext, port: int | None = None) -> tuple[str, int]:
    """A random ``127.x.y.z`` (all of 127/8 reaches ``lo`` on Linux) where ``port`` (default 80) can be
    bound; without the privilege for port 80, a free high port. Random, so two sandboxes on one machine
    do not collide."""
    for _ in range(50):
        address = f"127.{random.randint(64, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        if address in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, HTTP_PORT if port is None else port))
            except PermissionError:
                if port is not None:
                    raise SandboxError(f"{context.cluster_name}: may not bind port {port} on {address}") from None
                return address, context.allocate_port()
            except OSError:
                continue
        return address, HTTP_PORT if port is None else port
    raise SandboxError(f"{context.cluster_name}: found no free loopback address for the ingress controller")


def _named_conf(zone: Zone, directory: Path) -> str:
    return f"""// Written by the kibertas-async sandbox: an authoritative-only server for one test zone.
options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    managed-keys-directory "{directory}";
    listen-on port {zone.port} {{ {zone.address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    notify no;
    dnssec-validation no;
    allow-query {{ 127.0.0.0/8; }};
}};
controls {{ }};
key "{zone.key_name}" {{
    algorithm {zone.key_algorithm};
    secret "{zone.key_secret}";
}};
zone "{zone.name}" {{
    type primary;
    file "{directory}/{zone.name}.db";
    allow-transfer {{ key "{zone.key_name}"; }};
    update-policy {{ grant "{zone.key_name}" zonesub ANY; }};
}};
"""


def _zone_file(zone: Zone) -> str:
    # A 5 s negative TTL: a resolver that caches "does not exist" forgets it quickly.
    return f"""$ORIGIN {zone.name}.
$TTL 5
@   IN SOA ns.{zone.name}. hostmaster.{zone.name}. ( 1 60 60 3600 5 )
@   IN NS  ns.{zone.name}.
ns  IN A   {zone.address}
"""
