"""A live copy of a Kubernetes collection, kept by list-then-watch, that callers can wait on.

``KubeClient.wait_for`` follows one named object; the scale-up proof needs whole collections (the
nodes of a group, the pods of a Deployment, NodeClaims), and the moment each object first appeared.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskStatus

from kibertas_async.kube import KubeClient, KubeObject, Resource
from kibertas_async.kube.errors import KubeApiError, KubeUnavailable


def object_key(obj: KubeObject) -> str:
    """``namespace/name`` for namespaced objects, ``name`` otherwise."""
    metadata = obj.get("metadata", {})
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])


class Mirror:
    """The objects of one collection (optionally filtered by selectors), as the API server has them now."""

    def __init__(
        self,
        kube: KubeClient,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        self._kube = kube
        self.resource = resource
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self.objects: dict[str, KubeObject] = {}
        """Key (see :func:`object_key`) → the latest version of each object."""
        self.first_seen: dict[str, float] = {}
        """Key → ``anyio.current_time()`` when this mirror first saw the object (kept after deletion)."""
        self.resource_version: str | None = None
        self._changed = anyio.Event()
        self._callbacks: list[Callable[[Mirror], object]] = []

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """List, report started (``await task_group.start(mirror.run)``), then follow changes forever.

        An expired resourceVersion (410) re-lists; a dropped or unreachable API server is retried with
        backoff and resumed from the last version seen, as ``KubeClient.wait_for`` does.
        """
        await self._retrying(self._relist)
        task_status.started()
        while True:
            await self._retrying(self._follow)

    async def wait_until(self, predicate: Callable[[Mirror], bool]) -> None:
        """Return once ``predicate(self)`` holds, re-evaluating it after every change."""
        while not predicate(self):
            await self._changed.wait()

    def on_change(self, callback: Callable[[Mirror], object]) -> None:
        """Call ``callback(self)`` after every change (in the task that runs :meth:`run`)."""
        self._callbacks.append(callback)

    async def _retrying(self, action: Callable[[], Awaitable[None]]) -> None:
        attempt = 0
        while True:
            try:
                await action()
            except KubeApiError as error:
                if error.status != 410:
                    raise
                self.resource_version = None
                await self._relist()
                return
            except KubeUnavailable:
                attempt += 1
                await anyio.sleep(min(5.0, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))
                continue
            return

    async def _relist(self) -> None:
        listed = await self._kube.list(
            self.resource, self._namespace, label_selector=self._label_selector, field_selector=self._field_selector
        )
        now = anyio.current_time()
        self.objects = {object_key(obj): obj for obj in listed["items"]}
        for key in self.objects:
            self.first_seen.setdefault(key, now)
        self.resource_version = str(listed["metadata"].get("resourceVersion", ""))
        self._notify()

    async def _follow(self) -> None:
        if self.resource_version is None:
            await self._relist()
        assert self.resource_version is not None
        # aclosing: the stream's connection is released when we stop, not whenever the generator is collected.
        stream = self._kube.watch(
            self.resource,
            self._namespace,
            resource_version=self.resource_version,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
        )
        async with contextlib.aclosing(stream) as events:
            async for event_type, obj in events:
                self.resource_version = str(obj.get("metadata", {}).get("resourceVersion", self.resource_version))
                if event_type == "BOOKMARK":
                    continue
                key = object_key(obj)
                if event_type == "DELETED":
                    self.objects.pop(key, None)
                else:
                    self.objects[key] = obj
                    self.first_seen.setdefault(key, anyio.current_time())
                self._notify()

    def _notify(self) -> None:
        for callback in self._callbacks:
            callback(self)
        self._changed.set()
        self._changed = anyio.Event()
