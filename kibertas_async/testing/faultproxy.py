"""A fault-injecting proxy in front of a real Kubernetes API server, for tests of the client's resilience.

:class:`FaultProxy` listens on ``127.0.0.1`` as plain HTTP and forwards every request, watch streams chunk
by chunk, to a cluster's real HTTPS API server with that cluster's kubeconfig credentials (bearer token or
client certificate, and its CA). Everything a client sees therefore comes from the real server, except
what a test scripts:

- :meth:`FaultProxy.refuse_next` answers the next *N* matching requests itself, with ``429`` (and
  ``Retry-After``) or ``503``, the way an API server under load does;
- :meth:`FaultProxy.end_watches` ends matching watch streams early, normally (a clean end of the chunked
  body), after a given number of forwarded events, as a server's or a load balancer's timeout does;
- :attr:`FaultProxy.requests` records every request (method, path, query, when, the status answered);
  :meth:`FaultProxy.count` and :meth:`FaultProxy.wait_for_requests` filter it.

Matching takes ``method``, ``path`` (exact) and ``watch`` (``True``: only ``watch=true`` requests); what
is not given matches anything. A client reaches the proxy through :meth:`FaultProxy.write_kubeconfig`,
which writes a kubeconfig whose one context has ``server: http://127.0.0.1:PORT`` and no credentials.

Example::

    async with FaultProxy.for_cluster(sandbox_cluster) as proxy:
        proxy.refuse_next(2, status=429, retry_after="1", watch=True)
        async with await connect(proxy.write_kubeconfig(tmp_path / "kubeconfig")) as kube:
            await kube.wait_for(...)
        assert proxy.count(watch=True) == 3
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import yaml

from kibertas_async.kube.client import ClusterTarget

if TYPE_CHECKING:
    from aiohttp import ClientSession, web

    from kibertas_async.sandbox.runner import SandboxCluster

__all__ = ["FaultProxy", "SeenRequest"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
"""Headers that describe one connection, not the message: never forwarded (aiohttp sets its own)."""
_STATUS_REASONS = {429: "TooManyRequests", 503: "ServiceUnavailable"}


@dataclass
class SeenRequest:
    """One request the proxy received, and how it was answered."""

    method: str
    path: str
    query: dict[str, str]
    at: float
    """``time.monotonic()`` when it arrived (the clock anyio's asyncio backend uses)."""
    status: int | None = None
    """The status answered (``None`` while the upstream has not answered yet)."""
    refused: bool = False
    """Answered by the proxy itself (:meth:`FaultProxy.refuse_next`), not forwarded."""
    ended_early: bool = False
    """A watch stream the proxy ended (:meth:`FaultProxy.end_watches`)."""
    error: str | None = None
    """Why the upstream failed (the client's connection was then cut too)."""

    @property
    def watch(self) -> bool:
        """Whether it is a watch (``?watch=true``)."""
        return self.query.get("watch", "").lower() in ("true", "1")


@dataclass
class _Match:
    method: str | None = None
    path: str | None = None
    watch: bool | None = None

    def __call__(self, request: SeenRequest) -> bool:
        return (
            (self.method is None or request.method == self.method)
            and (self.path is None or request.path == self.path)
            and (self.watch is None or request.watch == self.watch)
        )


@dataclass
class _Refusal:
    match: _Match
    remaining: int
    status: int
    retry_after: str | None


@dataclass
class _StreamEnd:
    match: _Match
    remaining: int | None
    """Streams still to end; ``None``: every matching stream."""
    after_events: int


@dataclass
class _Upstream:
    server: str
    ssl: ssl.SSLContext | None
    headers: dict[str, str] = field(default_factory=dict)


class FaultProxy:
    """A plain-HTTP proxy on 127.0.0.1 to one cluster's API server, with scripted faults.

    :param kubeconfig: the kubeconfig with the cluster's server and credentials.
    :param context: its context to use; the current context when ``None``.
    """

    def __init__(self, kubeconfig: Path, context: str | None = None) -> None:
        self._kubeconfig = kubeconfig
        self._context = context
        self.requests: list[SeenRequest] = []
        """Every request received, in order of arrival."""
        self._refusals: list[_Refusal] = []
        self._stream_ends: list[_StreamEnd] = []
        self._arrived = anyio.Event()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._upstream: _Upstream | None = None
        self._secrets_dir: tempfile.TemporaryDirectory[str] | None = None
        self._port: int | None = None

    @classmethod
    def for_cluster(cls, cluster: SandboxCluster) -> FaultProxy:
        """A proxy to a sandbox cluster, with the credentials of its own kubeconfig."""
        return cls(cluster.kubeconfig, cluster.context)

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the credentials, and listen on a free port of ``127.0.0.1``."""
        import aiohttp
        from aiohttp import web

        self._secrets_dir = tempfile.TemporaryDirectory(prefix="kibertas-async-faultproxy-")
        self._upstream = _read_upstream(self._kubeconfig, self._context, Path(self._secrets_dir.name))
        # No decompression: bodies pass through byte for byte, with their Content-Encoding.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._upstream.ssl if self._upstream.ssl is not None else True),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False,
        )
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        # Open watch streams are cut when the proxy stops, not waited for.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def aclose(self) -> None:
        """Stop listening, cut open streams, close the upstream connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
            await anyio.sleep(0.25)  # TLS connections to the upstream shut down (aiohttp's advice)
        if self._secrets_dir is not None:
            self._secrets_dir.cleanup()
            self._secrets_dir = None

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._port is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._port}"

    def write_kubeconfig(self, path: Path, name: str = "fault-proxy") -> ClusterTarget:
        """Write a kubeconfig with one context, ``name``, to the proxy (no credentials: the proxy adds
        them); return the target that connects to it."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": {}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        }
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        return ClusterTarget(name, context=name, kubeconfig=str(path))

    # --- faults --------------------------------------------------------------------------------

    def refuse_next(
        self,
        count: int,
        *,
        status: int = 429,
        retry_after: str | None = "1",
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (and ``Retry-After`` unless ``None``)
        and a ``Status`` body, as the API server does when it sheds load; they are not forwarded."""
        self._refusals.append(_Refusal(_Match(method, path, watch), count, status, retry_after))

    def end_watches(
        self,
        *,
        after_events: int = 0,
        count: int | None = None,
        path: str | None = None,
    ) -> None:
        """End the next ``count`` watch streams (every one when ``None``) on ``path`` (any when ``None``)
        normally, after forwarding ``after_events`` events (bookmarks included)."""
        self._stream_ends.append(_StreamEnd(_Match("GET", path, True), count, after_events))

    def clear_faults(self) -> None:
        """Forward everything from now on."""
        self._refusals.clear()
        self._stream_ends.clear()

    # --- what was seen -------------------------------------------------------------------------

    def seen(
        self, *, method: str | None = None, path: str | None = None, watch: bool | None = None
    ) -> list[SeenRequest]:
        """The matching requests received so far, in order."""
        match = _Match(method, path, watch)
        return [request for request in self.requests if match(request)]

    def count(self, *, method: str | None = None, path: str | None = None, watch: bool | None = None) -> int:
        """How many matching requests were received so far."""
        return len(self.seen(method=method, path=path, watch=watch))

    async def wait_for_requests(
        self, count: int, *, method: str | None = None, path: str | None = None, watch: bool | None = None
    ) -> list[SeenRequest]:
        """Return the matching requests once at least ``count`` have arrived (bound it with a deadline)."""
        while len(seen := self.seen(method=method, path=path, watch=watch)) < count:
            await self._arrived.wait()
        return seen

    # --- forwarding ----------------------------------------------------------------------------

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        import aiohttp
        from aiohttp import web

        seen = SeenRequest(request.method, request.path, dict(request.query), time.monotonic())
        self.requests.append(seen)
        self._arrived.set()
        self._arrived = anyio.Event()
        refusal = self._take_refusal(seen)
        if refusal is not None:
            seen.status, seen.refused = refusal.status, True
            return _refused(refusal)
        assert self._upstream is not None
        headers = {key: value for key, value in request.headers.items() if key.lower() not in _HOP_BY_HOP}
        headers.pop("Authorization", None)
        headers.update(self._upstream.headers)
        body = await request.read()
        try:
            return await self._relay(request, seen, headers, body)
        except (aiohttp.ClientError, OSError) as error:
            # The upstream failed (an API server restarting): fail the client's connection the same way,
            # so it sees what it would have seen talking to the server itself, not a 500 from us nor a
            # normal end of a watch stream.
            seen.error = f"{type(error).__name__}: {error}"
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=502)

    async def _relay(
        self, request: web.Request, seen: SeenRequest, headers: dict[str, str], body: bytes
    ) -> web.StreamResponse:
        from aiohttp import web

        assert self._session is not None and self._upstream is not None
        async with self._session.request(
            request.method,
            self._upstream.server + request.rel_url.path_qs,
            headers=headers,
            data=body or None,
        ) as upstream:
            seen.status = upstream.status
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_BY_HOP:
                    response.headers.add(key, value)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            end = self._take_stream_end(seen) if upstream.status < 300 else None
            if end is not None and end.after_events == 0:
                seen.ended_early = True
                await response.write_eof()
                return response
            events = 0
            async for chunk in upstream.content.iter_any():
                if end is not None:
                    # Cut exactly after the last allowed event's newline, so the client sees whole events.
                    cut = _after_newlines(chunk, end.after_events - events)
                    events += chunk.count(b"\n")
                    if cut is not None:
                        await response.write(chunk[:cut])
                        seen.ended_early = True
                        break
                await response.write(chunk)
            await response.write_eof()
            return response

    def _take_refusal(self, seen: SeenRequest) -> _Refusal | None:
        for refusal in self._refusals:
            if refusal.remaining > 0 and refusal.match(seen):
                refusal.remaining -= 1
                return refusal
        return None

    def _take_stream_end(self, seen: SeenRequest) -> _StreamEnd | None:
        if not seen.watch:
            return None
        for end in self._stream_ends:
            if (end.remaining is None or end.remaining > 0) and end.match(seen):
                if end.remaining is not None:
                    end.remaining -= 1
                return end
        return None


def _refused(refusal: _Refusal) -> web.Response:
    from aiohttp import web

    reason = _STATUS_REASONS.get(refusal.status, "InternalError")
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"the fault proxy answered {refusal.status} {reason}",
        "reason": reason,
        "code": refusal.status,
    }
    headers = {"Retry-After": refusal.retry_after} if refusal.retry_after is not None else {}
    return web.json_response(status, status=refusal.status, headers=headers)


def _after_newlines(chunk: bytes, wanted: int) -> int | None:
    """The offset just after the ``wanted``-th newline of ``chunk`` (0 when ``wanted`` <= 0), or ``None``
    when the chunk holds fewer."""
    if wanted <= 0:
        return 0
    offset = -1
    for _ in range(wanted):
        offset = chunk.find(b"\n", offset + 1)
        if offset < 0:
            return None
    return offset + 1


def _read_upstream(kubeconfig: Path, context: str | None, secrets_dir: Path) -> _Upstream:
    """The server, TLS settings and auth header of ``context`` in ``kubeconfig``."""
    config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    name = context or config["current-context"]
    chosen = next(c["context"] for c in config["contexts"] if c["name"] == name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == chosen["cluster"])
    user: dict[str, Any] = (
        next((u["user"] for u in config.get("users") or [] if u["name"] == chosen.get("user")), {}) or {}
    )
    base = kubeconfig.parent

    def material(key: str, source: dict[str, Any], filename: str) -> Path | None:
        """A file holding ``key``: its ``-data`` form written to ``secrets_dir``, or the path given."""
        if source.get(f"{key}-data"):
            target = secrets_dir / filename
            target.write_bytes(base64.b64decode(source[f"{key}-data"]))
            target.chmod(0o600)
            return target
        if source.get(key):
            return base / str(source[key])
        return None

    server = str(cluster["server"]).rstrip("/")
    context_ssl: ssl.SSLContext | None = None
    if server.startswith("https://"):
        ca = material("certificate-authority", cluster, "ca.crt")
        context_ssl = ssl.create_default_context(cafile=str(ca) if ca else None)
        if cluster.get("insecure-skip-tls-verify"):
            context_ssl.check_hostname = False
            context_ssl.verify_mode = ssl.CERT_NONE
        certificate = material("client-certificate", user, "client.crt")
        key = material("client-key", user, "client.key")
        if certificate is not None and key is not None:
            context_ssl.load_cert_chain(str(certificate), str(key))
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    return _Upstream(server, context_ssl, headers)
