"""DNS and HTTP probes: the one module of the ingress check that imports dnspython and aiohttp.

The check imports this module only when it reaches its DNS or HTTP step, so ``kibertas-async --help`` and
``list`` never pay for those libraries. Every function answers with plain data or raises
:class:`ProbeFailed` with a sentence a human understands; the check decides whether to retry.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
from aiohttp.abc import AbstractResolver, ResolveResult

from kibertas_async_ingress.options import Nameserver

_BODY_EXCERPT = 200


class ProbeFailed(Exception):
    """One attempt of a probe failed; the message says how (NXDOMAIN, connection refused, ...)."""


@dataclass(frozen=True)
class Resolution:
    """What a name resolved to."""

    name: str
    addresses: tuple[str, ...]
    """The A and AAAA addresses at the end of the chain."""
    cnames: tuple[str, ...]
    """Every CNAME target followed on the way, in order (no trailing dots)."""

    def describe(self) -> str:
        """``a.example -> b.example -> 192.0.2.1, 192.0.2.2``."""
        return " -> ".join((self.name, *self.cnames, ", ".join(self.addresses) or "(no address)"))


class DnsResolver:
    """Asks the system's resolver or the given nameservers; never caches, so every attempt is fresh."""

    def __init__(self, nameservers: Sequence[Nameserver], *, attempt_timeout: float = 5.0) -> None:
        try:
            self._resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        except dns.resolver.NoResolverConfiguration:
            raise ProbeFailed("the system has no DNS resolver configured (/etc/resolv.conf); set nameservers") from None
        if nameservers:
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(ns.address, ns.port) for ns in nameservers]
        self._resolver.lifetime = attempt_timeout
        self._resolver.cache = None
        self.servers = ", ".join(str(ns) for ns in nameservers) or "the system resolver"
        """Who is asked, for messages."""

    async def resolve(self, name: str) -> Resolution:
        """The A and AAAA addresses of ``name``, following CNAMEs.

        :raises ProbeFailed: NXDOMAIN, no address at all, no answer from the servers, ...
        """
        addresses: list[str] = []
        cnames: list[str] = []
        for record_type in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                answer = await self._resolver.resolve(name, record_type, raise_on_no_answer=False, search=False)
            except dns.resolver.NXDOMAIN:
                raise ProbeFailed(f"{name} does not exist (NXDOMAIN from {self.servers})") from None
            except dns.resolver.NoNameservers as error:
                raise ProbeFailed(f"no nameserver answered for {name}: {_first_line(error)}") from None
            except dns.exception.Timeout:
                raise ProbeFailed(f"{self.servers} did not answer for {name} in time") from None
            except dns.exception.DNSException as error:
                raise ProbeFailed(f"looking up {name} failed: {_first_line(error)}") from None
            for rrset in answer.chaining_result.cnames:
                for record in rrset:
                    target = record.target.to_text().rstrip(".").lower()
                    if target not in cnames:
                        cnames.append(target)
            if answer.rrset is not None:
                addresses.extend(record.to_text() for record in answer.rrset)
        if not addresses:
            via = f" (via {' -> '.join(cnames)})" if cnames else ""
            raise ProbeFailed(f"{name} exists but has no A or AAAA record{via} at {self.servers}")
        return Resolution(name, tuple(addresses), tuple(cnames))


@dataclass(frozen=True)
class HttpAnswer:
    """What one HTTP request got back."""

    status: int
    reason: str
    body_excerpt: str
    peer: str
    """The addresses the request was sent to, and the port."""


class _PinnedResolver(AbstractResolver):
    """Resolves the probed host to addresses found beforehand (like ``curl --resolve``), so the request
    reaches exactly the address the check verified, with the right Host header and TLS server name."""

    def __init__(self, host: str, addresses: Sequence[str]) -> None:
        self._host = host
        self._addresses = tuple(addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._host:
            raise OSError(f"unexpected lookup of {host} while probing {self._host}")
        results: list[ResolveResult] = []
        for address in self._addresses:
            version = ipaddress.ip_address(address).version
            results.append(
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": socket.AF_INET6 if version == 6 else socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
            )
        return results

    async def close(self) -> None:
        """Nothing to release."""


async def http_get(url: str, host: str, addresses: Sequence[str], *, attempt_timeout: float = 10.0) -> HttpAnswer:
    """``GET url`` with ``host`` resolved to ``addresses``; redirects are not followed (their status counts).

    :raises ProbeFailed: connection refused or reset, timeout, TLS failure, ...
    """
    timeout = aiohttp.ClientTimeout(total=attempt_timeout, connect=min(5.0, attempt_timeout))
    connector = aiohttp.TCPConnector(resolver=_PinnedResolver(host, addresses), force_close=True)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            body = await response.content.read(_BODY_EXCERPT)
            return HttpAnswer(
                status=response.status,
                reason=response.reason or "",
                body_excerpt=" ".join(body.decode("utf-8", "replace").split()),
                peer=f"{', '.join(addresses)} port {response.url.port}",
            )
    except TimeoutError:
        raise ProbeFailed(f"GET {url} got no answer within {attempt_timeout:g}s") from None
    except aiohttp.ClientError as error:
        raise ProbeFailed(f"GET {url} failed: {type(error).__name__}: {_first_line(error)}") from None
    except OSError as error:
        raise ProbeFailed(f"GET {url} failed: {error.strerror or error}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
