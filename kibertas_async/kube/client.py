"""The one module that talks to kubernetes_asyncio (imported lazily, when a cluster is connected).

Everything above it sees plain dicts (the objects' JSON) and :class:`Resource` descriptions, so a check
can create any kind, custom resources included, without importing a client library.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from kibertas_async.kube.errors import ClusterUnreachable, KubeApiError, KubeUnavailable
from kibertas_async.kube.resources import Resource

KubeObject = dict[str, Any]
"""A Kubernetes object as its JSON: ``{"apiVersion": ..., "kind": ..., "metadata": {...}, ...}``."""

_RETRYABLE_STATUS = {429, 503}
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

    def view(self) -> KubeClient:
        """Another client over the same connection, with its own request counter (one per check)."""
        return KubeClient(self._api, self.cluster)

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
    ) -> KubeObject:
        """Send one request and return the decoded JSON body. Retries 429/503 honouring Retry-After."""
        import aiohttp

        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                response = await self._send(method, path, query, body, content_type, (10.0, timeout))
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                if method != "GET" or attempt == _MAX_ATTEMPTS:
                    raise KubeUnavailable(f"{method} {path}: {type(error).__name__}: {error}") from None
                await anyio.sleep(_backoff(attempt))
                continue
            try:
                data = await response.read()
            finally:
                response.release()
            if response.status < 300:
                decoded: KubeObject = json.loads(data) if data else {}
                return decoded
            if response.status in _RETRYABLE_STATUS and attempt < _MAX_ATTEMPTS:
                await anyio.sleep(_retry_after(response.headers.get("Retry-After"), attempt))
                continue
            raise _api_error(response.status, data, method, path)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: object | None,
        content_type: str,
        timeout: Any,
    ) -> Any:
        self.requests_made += 1
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
            page = await self.request("GET", resource.path(namespace), query=query)
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

        An ``ERROR`` event with code 410 (the version is too old) is raised as :class:`KubeApiError`,
        so callers re-list.
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
        try:
            response = await self._send("GET", path, query, None, "", (10.0, timeout_seconds + 30.0))
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            raise KubeUnavailable(f"watch {path}: {type(error).__name__}: {error}") from None
        try:
            if response.status >= 300:
                raise _api_error(response.status, await response.read(), "WATCH", path)
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
                raise KubeUnavailable(f"watch {path}: {type(error).__name__}: {error}") from None
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

        Never polls on a fixed sleep: the object is listed once, then watched from that list's
        resourceVersion; an expired version (410) re-lists, a dropped stream resumes from the last
        version seen, an unreachable API server is retried with backoff. There is no timeout here:
        the caller's step or check deadline bounds the wait. ``until`` may raise to end the wait early
        (e.g. :class:`~kibertas_async.errors.CheckFailed` for a terminal condition). ``progress`` turns
        the latest object into a short text given to ``on_progress`` (it explains a timeout).
        """
        field_selector = f"metadata.name={name}"
        resource_version: str | None = None
        attempt = 0

        def satisfied(obj: KubeObject | None) -> bool:
            if progress is not None and on_progress is not None:
                on_progress(progress(obj))
            return until(obj)

        while True:
            try:
                if resource_version is None:
                    listed = await self.list(resource, namespace, field_selector=field_selector)
                    items = listed["items"]
                    current = items[0] if items else None
                    if satisfied(current):
                        return current
                    resource_version = str(listed["metadata"].get("resourceVersion", ""))
                events = self.watch(
                    resource, namespace, resource_version=resource_version, field_selector=field_selector
                )
                # Close the stream (and its connection) now when we return from inside it, not whenever
                # the abandoned generator is collected: an unclosed socket outlives the wait otherwise.
                async with contextlib.aclosing(events):
                    async for event_type, obj in events:
                        attempt = 0
                        resource_version = str(obj.get("metadata", {}).get("resourceVersion", resource_version))
                        if event_type == "BOOKMARK":
                            continue
                        current = None if event_type == "DELETED" else obj
                        if satisfied(current):
                            return current
            except KubeApiError as error:
                if error.status != 410:
                    raise
                resource_version = None
            except KubeUnavailable:
                attempt += 1
                await anyio.sleep(_backoff(attempt))


async def connect(target: ClusterTarget, *, timeout: float = 15.0) -> KubeClient:
    """Build a client for ``target`` and prove the API server answers (``GET /version``).

    Raises :class:`ClusterUnreachable` with a readable reason otherwise.
    """
    from kubernetes_asyncio import config as kube_config
    from kubernetes_asyncio.client import ApiClient, Configuration

    try:
        configuration = Configuration()
        if target.in_cluster:
            kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await kube_config.load_kube_config(
                config_file=target.kubeconfig,
                context=target.context,
                client_configuration=configuration,
                persist_config=False,
            )
    except Exception as error:
        raise ClusterUnreachable(f"cannot load credentials: {error}") from None
    client = KubeClient(ApiClient(configuration=configuration), target.name)
    try:
        with anyio.fail_after(timeout):
            await client.request("GET", "/version", timeout=timeout)
    except TimeoutError:
        await client.aclose()
        raise ClusterUnreachable(f"API server at {configuration.host} did not answer in {timeout:g}s") from None
    except (KubeUnavailable, KubeApiError) as error:
        await client.aclose()
        raise ClusterUnreachable(f"API server at {configuration.host} is unreachable: {error}") from None
    return client


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter, from 0.2 s up to 5 s."""
    return float(min(5.0, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))


def _retry_after(header: str | None, attempt: int) -> float:
    if header:
        try:
            return min(30.0, max(0.0, float(header)))
        except ValueError:
            pass
    return _backoff(attempt)


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
