"""The ingress check's options, all settable per cluster (config file ``clusters.<name>.<option>``).

The reference tool's environment variables (``EXTERNAL_HOSTNAME``, ``INGRESS_CLASS_NAME``,
``RESOURCE_NAME``) are accepted beside our own names, so existing Job manifests keep working.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal, cast

from kibertas_async import Option, optional, parse_bool, parse_duration, parse_list, parse_mapping, workload_option

HttpScheme = Literal["http", "https"]

_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_RESOURCE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,51}[a-z0-9])?$")


@dataclass(frozen=True)
class Nameserver:
    """One DNS server to ask: an IP address and a port (53 unless given)."""

    address: str
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def parse_hostname(text: str) -> str:
    """A fully qualified DNS name (a trailing dot is dropped, case folded); empty is unset."""
    name = text.strip().rstrip(".").lower()
    if not name:
        return ""
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_DNS_LABEL.match(label) for label in labels):
        raise ValueError(f"{text!r} is not a fully qualified host name (example: sample.example.com)")
    return name


def parse_resource_name(text: str) -> str:
    """A name valid for a Deployment, a Service and an Ingress alike (a DNS label of at most 53 characters)."""
    name = text.strip()
    if not _RESOURCE_NAME.match(name):
        raise ValueError(f"{text!r} is not a valid resource name (lower-case letters, digits and '-')")
    return name


def parse_nameservers(text: str) -> tuple[Nameserver, ...]:
    """Comma-separated ``IP``, ``IP:PORT`` or ``[IPv6]:PORT``; empty means the system's resolver."""
    servers: list[Nameserver] = []
    for item in parse_list(text):
        address, port = item, "53"
        if item.startswith("["):
            address, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif item.count(":") == 1:
            address, port = item.split(":")
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(f"{item!r}: nameservers are IP addresses (optionally :PORT), not names") from None
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{item!r}: {port!r} is not a port")
        servers.append(Nameserver(address, int(port)))
    return tuple(servers)


def parse_http_scheme(text: str) -> HttpScheme:
    """``http`` or ``https``."""
    scheme = text.strip().lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"{text!r} is neither http nor https")
    return cast(HttpScheme, scheme)


def parse_port(text: str) -> int:
    """A TCP port, 1 to 65535."""
    if not text.strip().isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def parse_http_status(text: str) -> int:
    """An HTTP status code, 100 to 599."""
    if not text.strip().isdigit() or not 100 <= int(text) <= 599:
        raise ValueError(f"{text!r} is not an HTTP status code (100-599)")
    return int(text)


def parse_http_path(text: str) -> str:
    """A URL path starting with ``/`` (a query string may follow)."""
    path = text.strip()
    if not path.startswith("/"):
        raise ValueError(f"{text!r} must start with '/'")
    return path


HOSTNAME = Option[str](
    "ingress-hostname",
    "Host name the Ingress serves and external-dns publishes; each cluster needs its own.",
    default="",
    parse=parse_hostname,
    env=("EXTERNAL_HOSTNAME",),
    metavar="HOST",
)
INGRESS_CLASS = Option[str](
    "ingress-class",
    "IngressClass of the Ingress (alb adds the AWS Load Balancer Controller annotations).",
    default="alb",
    parse=parse_resource_name,
    env=("INGRESS_CLASS_NAME",),
    metavar="CLASS",
)
RESOURCE_NAME = Option[str](
    "ingress-resource-name",
    "Name of the Deployment, Service and Ingress the check creates.",
    default="sample",
    parse=parse_resource_name,
    env=("RESOURCE_NAME",),
    metavar="NAME",
)
IMAGE = Option[str](
    "ingress-image",
    "Container image of the web server behind the Ingress (it must answer on port 80).",
    default="nginx:stable-alpine",
    metavar="IMAGE",
)
ANNOTATIONS = Option[dict[str, str]](
    "ingress-annotations",
    "Extra Ingress annotations (key=value,... or JSON); they override the check's own.",
    default={},
    parse=parse_mapping,
    metavar="KEY=VALUE,...",
)
NAMESERVERS = Option[tuple[Nameserver, ...]](
    "ingress-nameservers",
    "DNS servers to resolve the host with (IP[:PORT],...); empty: the system's resolver.",
    default=(),
    parse=parse_nameservers,
    metavar="IP[:PORT],...",
)
SKIP_DNS = Option[bool](
    "ingress-skip-dns",
    "Do not check DNS; HTTP then goes straight to the load balancer's address with the Host header.",
    default=False,
    parse=parse_bool,
)
SKIP_HTTP = Option[bool]("ingress-skip-http", "Do not send the HTTP request.", default=False, parse=parse_bool)
HTTP_SCHEME = Option[HttpScheme](
    "ingress-http-scheme", "Scheme of the HTTP request: http or https.", default="http", parse=parse_http_scheme
)
HTTP_PORT = Option[int | None](
    "ingress-http-port",
    "Port of the HTTP request; empty: 80 for http, 443 for https.",
    default=None,
    parse=optional(parse_port),
    metavar="PORT",
)
HTTP_PATH = Option[str]("ingress-http-path", "Path of the HTTP request.", default="/", parse=parse_http_path)
EXPECTED_STATUS = Option[int](
    "ingress-expected-status", "HTTP status that counts as success.", default=200, parse=parse_http_status
)
ADDRESS_TIMEOUT = Option[float](
    "ingress-address-timeout",
    "How long the ingress controller may take to give the Ingress a load-balancer address.",
    default=300.0,
    parse=parse_duration,
    metavar="DURATION",
)
DNS_TIMEOUT = Option[float](
    "ingress-dns-timeout",
    "How long the host may take to resolve to the load balancer's address.",
    default=300.0,
    parse=parse_duration,
    metavar="DURATION",
)
HTTP_TIMEOUT = Option[float](
    "ingress-http-timeout",
    "How long the HTTP request may be retried until it answers the expected status.",
    default=120.0,
    parse=parse_duration,
    metavar="DURATION",
)

CONTROLLER_WORKLOAD = workload_option("ingress controller", "kube-system/aws-load-balancer-controller")
EXTERNAL_DNS_WORKLOAD = workload_option("external-dns", "kube-system/external-dns")

ALL_OPTIONS: tuple[Option[object], ...] = (
    HOSTNAME,
    INGRESS_CLASS,
    RESOURCE_NAME,
    IMAGE,
    ANNOTATIONS,
    NAMESERVERS,
    SKIP_DNS,
    SKIP_HTTP,
    HTTP_SCHEME,
    HTTP_PORT,
    HTTP_PATH,
    EXPECTED_STATUS,
    ADDRESS_TIMEOUT,
    DNS_TIMEOUT,
    HTTP_TIMEOUT,
    CONTROLLER_WORKLOAD,
    EXTERNAL_DNS_WORKLOAD,
)  # type: ignore[assignment]
"""Every option of the check, in the order ``--help`` lists them."""
