"""The one module that talks to kubernetes_asyncio (imported lazily, when a cluster is connected).

Everything above it sees plain dicts (the objects' JSON) and :class:`Resource` descriptions, so a check
can create any kind, custom resources included, without importing a client library.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import random
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio

from kibertas_async.kube.errors import ClusterUnreachable, KubeApiError, KubeUnavailable
from kibertas_async.kube.resources import Resource

KubeObject = dict[str, Any]
"""A Kubernetes object as its JSON: ``{"apiVersion": ..., "kind": ..., "metadata": {...}, ...}``."""

RETRYABLE_STATUS = frozenset({429, 503})
"""Statuses that mean "not now": the request is sent again, after the Retry-After the server asks for."""
RETRY_AFTER_CAP = 10.0
"""The longest one retry waits, whatever Retry-After asks: the attempts stay within a step's deadline."""
CLOSE_TIMEOUT = 5.0
"""How long closing a connection pool nobody will use may take (shielded from cancellation)."""
_MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class ClusterTarget:
    """Where a cluster is: a kubeconfig context, or the Pod's own service account."""

    name: str
    """The name used in events and reports (the context name, or ``in-cluster``)."""
    context: str | None = None
    kubeconfig: str | None = None
    """A path, or several joined with ``:`` as in ``KUBECONFIG``; ``None``: the default."""
    in_cluster: bool = False


class KubeClient:
    """A small async Kubernetes API client over one cluster's connection."""

    def __init__(self, api_client: Any, cluster: str) -> None:
        self._api = api_client
        self.cluster = cluster
        self.requests_made = 0
        """How many API requests this client sent (watches count once each)."""
        self.requests_by_verb: Counter[str] = Counter()
        """The same requests by verb: ``GET`` (one object), ``LIST`` (a page), ``WATCH``, ``POST``, ``PATCH``,
        ``PUT``, ``DELETE``; retries count as requests."""

    def view(self) -> KubeClient:
        """Another client over the same connection, with its own request counter (one per check)."""
        return KubeClient(self._api, self.cluster)

    def credentials(self) -> list[str]:
        """The secrets this client sends (the bearer token an exec plugin or a token file gave it, a
        basic-auth password), so the redactor can blank them wherever they turn up."""
        configuration = getattr(self._api, "configuration", None)
        found: list[str] = []
        for value in (getattr(configuration, "api_key", None) or {}).values():
            text = str(value)
            found += [text, text.removeprefix("Bearer ").strip()]
        password = getattr(configuration, "password", None)
        if password:
            found.append(str(password))
        return [value for value in found if value]

    async def aclose(self) -> None:
        """Close the connection pool, and give TLS connections the moment they need to shut down
        (aiohttp's advice), so none is left to raise a ResourceWarning later."""
        await self._api.close()
        await anyio.sleep(0.25)

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- raw requests -------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: object | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
        verb: str | None = None,
    ) -> KubeObject:
        """Send one request and return the decoded JSON body (``verb``: how it is counted, default ``method``).

        429 and 503 are retried after the Retry-After the server asks for (at most
        :data:`RETRY_AFTER_CAP` seconds per attempt); a GET that cannot reach the server is retried with
        backoff. :class:`KubeApiError` or :class:`KubeUnavailable` once the attempts are used up.
        """
        data = await self._request_bytes(method, path, query, body, content_type, timeout, verb)
        decoded: KubeObject = json.loads(data) if data else {}
        return decoded

    async def request_text(
        self, path: str, *, query: Mapping[str, str] | None = None, timeout: float = 30.0, verb: str = "GET"
    ) -> str:
        """``GET path`` of an endpoint that answers plain text, not JSON (a container's ``.../log``), as text;
        bytes that are not UTF-8 are replaced. The same retries and errors as :meth:`request`."""
        data = await self._request_bytes("GET", path, query, None, "", timeout, verb)
        return data.decode("utf-8", errors="replace")

    async def _request_bytes(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: object | None,
        content_type: str,
        timeout: float,
        verb: str | None,
    ) -> bytes:
        """Send one request (with :meth:`_open`'s retries) and return its whole body."""
        import aiohttp

        for attempt in range(1, _MAX_ATTEMPTS + 1):
            response = await self._open(method, path, query, body, content_type, (10.0, timeout), verb=verb)
            try:
                data: bytes = await response.read()
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                if method != "GET" or attempt == _MAX_ATTEMPTS:
                    raise KubeUnavailable(f"{method} {path}: {type(error).__name__}: {error}") from None
                await anyio.sleep(backoff_delay(attempt))
                continue
            finally:
                response.release()
            return data
        raise AssertionError("unreachable: the loop returns or raises")

    async def _open(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: object | None,
        content_type: str,
        timeout: Any,
        *,
        label: str | None = None,
        verb: str | None = None,
    ) -> Any:
        """Send until the server answers below 300 and return that (unread) response.

        The retry rules of every request, watches included: 429/503 after Retry-After, a GET (or a
        watch) that cannot connect after backoff, up to :data:`_MAX_ATTEMPTS` attempts in all.
        """
        import aiohttp

        label = label or method
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                response = await self._send(method, path, query, body, content_type, timeout, verb or label)
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                if method != "GET" or attempt == _MAX_ATTEMPTS:
                    raise KubeUnavailable(f"{label} {path}: {type(error).__name__}: {error}") from None
                await anyio.sleep(backoff_delay(attempt))
                continue
            if response.status < 300:
                return response
            try:
                data = await response.read()
            except (aiohttp.ClientError, OSError, TimeoutError):
                data = b""
            finally:
                response.release()
            if response.status in RETRYABLE_STATUS and attempt < _MAX_ATTEMPTS:
                await anyio.sleep(_retry_after(response.headers.get("Retry-After"), attempt))
                continue
            raise _api_error(response.status, data, label, path)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: object | None,
        content_type: str,
        timeout: Any,
        verb: str,
    ) -> Any:
        self.requests_made += 1
        self.requests_by_verb[verb] += 1
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        return await self._api.call_api(
            path,
            method,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
        )

    # --- objects -----------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> KubeObject | None:
        """The object, or ``None`` if it does not exist."""
        try:
            return await self.request("GET", resource.path(namespace, name))
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> KubeObject:
        """All pages of a list, merged: ``{"items": [...], "metadata": {"resourceVersion": ...}}``."""
        query: dict[str, str] = {"limit": "500"}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        items: list[KubeObject] = []
        while True:
            page = await self.request("GET", resource.path(namespace), query=query, verb="LIST")
            items.extend(page.get("items") or [])
            continuation = page.get("metadata", {}).get("continue")
            if not continuation:
                return {"items": items, "metadata": page.get("metadata", {})}
            query["continue"] = continuation

    async def create(self, resource: Resource, manifest: KubeObject, namespace: str | None = None) -> KubeObject:
        """Create an object from its manifest and return it as stored."""
        body = {"apiVersion": resource.api_version, "kind": resource.kind, **manifest}
        return await self.request("POST", resource.path(namespace), body=body)

    async def patch(self, resource: Resource, name: str, patch: KubeObject, namespace: str | None = None) -> KubeObject:
        """JSON merge patch."""
        return await self.request(
            "PATCH", resource.path(namespace, name), body=patch, content_type="application/merge-patch+json"
        )

    async def delete(
        self,
        resource: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
    ) -> bool:
        """Delete with the given propagation policy; ``False`` if it was already gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            await self.request("DELETE", resource.path(namespace, name), body=body)
        except KubeApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    # --- watches -----------------------------------------------------------------------------

    async def watch(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        resource_version: str,
        field_selector: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int = 240,
    ) -> AsyncGenerator[tuple[str, KubeObject], None]:
        """Yield ``(type, object)`` watch events from ``resource_version`` until the server ends the stream.

        Opening the stream follows :meth:`request`'s retry rules (429/503 after Retry-After, connection
        errors after backoff). An ``ERROR`` event with code 410 (the version is too old) is raised as
        :class:`KubeApiError`, so callers re-list. Most callers want :class:`~kibertas_async.kube.Informer`,
        which does the listing, the resuming and the re-listing.
        """
        import aiohttp

        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if field_selector:
            query["fieldSelector"] = field_selector
        if label_selector:
            query["labelSelector"] = label_selector
        path = resource.path(namespace)
        response = await self._open("GET", path, query, None, "", (10.0, timeout_seconds + 30.0), label="WATCH")
        try:
            buffer = b""
            try:
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        if not line.strip():
                            continue
                        event = json.loads(line)
                        event_type = str(event.get("type"))
                        obj: KubeObject = event.get("object") or {}
                        if event_type == "ERROR":
                            raise KubeApiError(
                                int(obj.get("code", 500)),
                                str(obj.get("reason", "")),
                                str(obj.get("message", "")),
                                method="WATCH",
                                path=path,
                            )
                        yield event_type, obj
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                raise KubeUnavailable(f"WATCH {path}: {type(error).__name__}: {error}") from None
        finally:
            response.release()

    async def wait_for(
        self,
        resource: Resource,
        name: str,
        namespace: str | None,
        until: Callable[[KubeObject | None], bool],
        *,
        progress: Callable[[KubeObject | None], str] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> KubeObject | None:
        """Wait, by list-then-watch, until ``until(object)`` is true; ``None`` stands for "absent".

        An :class:`~kibertas_async.kube.Informer` on the one object (``fieldSelector=metadata.name=NAME``):
        never a fixed sleep; an expired version (410) re-lists, a dropped, throttled or ended stream
        resumes from the last version seen, with backoff. There is no timeout here: the caller's step or
        check deadline bounds the wait. ``until`` is asked after the list and after every change, and may
        raise to end the wait early (e.g. :class:`~kibertas_async.errors.CheckFailed` for a terminal
        condition). ``progress`` turns the latest object into a short text given to ``on_progress``
        (it explains a timeout).
        """
        from kibertas_async.kube.informer import Informer

        informer = Informer(self, resource, namespace, field_selector=f"metadata.name={name}")
        async with contextlib.aclosing(informer.updates()) as updates:
            async for _changes in updates:
                current = next(iter(informer.objects.values()), None)
                if progress is not None and on_progress is not None:
                    on_progress(progress(current))
                if until(current):
                    return current
        raise AssertionError("unreachable: an informer's updates never end")


async def connect(target: ClusterTarget, *, timeout: float = 15.0) -> KubeClient:
    """Build a client for ``target`` and prove the API server answers (``GET /version``).

    Raises :class:`ClusterUnreachable` with a readable reason otherwise.
    """
    from kibertas_async.kube import _kubernetes_asyncio

    Configuration, ApiClient, kube_config = _kubernetes_asyncio.load()
    try:
        configuration = Configuration()
        if target.in_cluster:
            kube_config.load_incluster_config(client_configuration=configuration)
        else:
            await _kubernetes_asyncio.load_kubeconfig(configuration, target.kubeconfig, target.context)
    except Exception as error:
        raise ClusterUnreachable(f"cannot load credentials: {error}") from None
    client = KubeClient(ApiClient(configuration=configuration), target.name)
    try:
        with anyio.fail_after(timeout):
            await client.request("GET", "/version", timeout=timeout)
    except BaseException as error:
        # However the attempt ends short of success (no answer, an error, or a cancellation from the
        # caller's deadline or a signal while the request is in flight), the connection pool must not
        # outlive it; the cancellation itself is re-raised.
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            await client.aclose()
        if isinstance(error, TimeoutError):
            raise ClusterUnreachable(f"API server at {configuration.host} did not answer in {timeout:g}s") from None
        if isinstance(error, KubeUnavailable | KubeApiError):
            raise ClusterUnreachable(f"API server at {configuration.host} is unreachable: {error}") from None
        raise
    return client


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with jitter, from 0.2 s up to 5 s: the delay before retry number ``attempt``
    (1-based) of anything that talks to the API server."""
    return float(min(5.0, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))


def _retry_after(header: str | None, attempt: int) -> float:
    """Seconds before the next attempt: what ``Retry-After`` asks (seconds or an HTTP date), at most
    :data:`RETRY_AFTER_CAP`; the usual backoff when it asks for nothing usable (absent, invalid, past)."""
    seconds: float | None = None
    if header:
        try:
            seconds = float(header)
        except ValueError:
            with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
                when = email.utils.parsedate_to_datetime(header)
                seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds is None or not seconds > 0:
        return backoff_delay(attempt)
    return min(RETRY_AFTER_CAP, seconds)


def _api_error(status: int, data: bytes, method: str, path: str) -> KubeApiError:
    reason, message = "", data.decode("utf-8", "replace")[:500]
    try:
        decoded = json.loads(data)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        reason = str(decoded.get("reason", ""))
        message = str(decoded.get("message", message))
    return KubeApiError(status, reason, message, method=method, path=path)
