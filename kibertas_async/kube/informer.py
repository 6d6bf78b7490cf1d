"""An informer: a live copy of one Kubernetes collection, kept by list-then-watch.

It is the one way this project follows Kubernetes state. :meth:`KubeClient.wait_for` is an informer on a
single object (``fieldSelector=metadata.name=NAME``); checks that follow whole collections (the nodes of a
group, the pods of a Deployment) run one in a task and wait on it. It works as client-go's reflector does:

- it lists every page, then watches from the list's resourceVersion with ``allowWatchBookmarks``;
  bookmarks only advance the version;
- an expired version (410 Gone) re-lists at once and reports how the fresh list differs from the cache
  (objects added, modified and deleted meanwhile), so consumers see the current state;
- opening the watch follows :meth:`KubeClient.request`'s rules (429/503 after Retry-After, connection
  errors after backoff); a server that stays throttled or unreachable is retried with backoff for as
  long as the caller waits: the caller's deadline bounds it;
- a stream the server ends normally (its ``timeoutSeconds``, a proxy's idle limit) is reopened from the
  last version after a short backoff, which grows while streams keep ending with no event and resets
  once events flow again, so a server that closes every stream at once is not hammered.

Other API errors (403, 404 for a kind that is not served) are raised to the consumer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Self

import anyio
from anyio.abc import TaskStatus

from kibertas_async.kube.client import RETRYABLE_STATUS, KubeObject, backoff_delay
from kibertas_async.kube.errors import KubeApiError, KubeUnavailable
from kibertas_async.kube.resources import Resource

if TYPE_CHECKING:
    from kibertas_async.kube.client import KubeClient

__all__ = ["Change", "Informer", "object_key"]

ChangeType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class Change:
    """One difference the informer applied to its cache."""

    type: ChangeType
    key: str
    """The object's key in :attr:`Informer.objects` (see :func:`object_key`)."""
    object: KubeObject
    """The object as it is now; for ``DELETED``, as it was last seen."""


def object_key(obj: KubeObject) -> str:
    """``namespace/name`` for namespaced objects, ``name`` otherwise."""
    metadata = obj.get("metadata", {})
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata['name']}" if namespace else str(metadata["name"])


class Informer:
    """The objects of one collection (optionally narrowed by selectors), as the API server has them now.

    Drive it with :meth:`run` in a task (``await task_group.start(informer.run)``) and wait with
    :meth:`wait_until`, or iterate :meth:`updates` directly. Either way :attr:`objects` is the cache,
    and every callback given to :meth:`on_change` is called with each batch of changes.
    """

    def __init__(
        self,
        kube: KubeClient,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout: int = 240,
    ) -> None:
        self._kube = kube
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self._watch_timeout = watch_timeout
        self.objects: dict[str, KubeObject] = {}
        """Key (see :func:`object_key`) → the latest version of each object."""
        self.resource_version: str | None = None
        """The version the next watch resumes from; ``None`` until listed, and after a 410."""
        self.lists = 0
        """How many times it listed: the first list and every re-list after an expired version."""
        self._callbacks: list[Callable[[Sequence[Change]], object]] = []
        self._changed = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """List, report started (``await task_group.start(informer.run)``), then follow changes until cancelled."""
        started = False
        async with contextlib.aclosing(self.updates()) as updates:
            async for _changes in updates:
                if not started:
                    started = True
                    task_status.started()

    def on_change(self, callback: Callable[[Sequence[Change]], object]) -> None:
        """Call ``callback(changes)`` after every list (the differences, maybe none) and every event."""
        self._callbacks.append(callback)

    async def wait_until(self, predicate: Callable[[Self], bool]) -> None:
        """Return once ``predicate(self)`` holds, re-evaluating it after every update.

        Someone must be driving the informer (:meth:`run` in a task).
        """
        while not predicate(self):
            await self._changed.wait()

    async def updates(self) -> AsyncGenerator[list[Change], None]:
        """List, then watch, forever; yield each update after applying it to :attr:`objects`.

        An update is what one list revealed (every difference from the cache, possibly none: the first
        list of an empty collection is an update too) or what one watch event changed.
        """
        failures = 0
        """Attempts in a row that failed (or expired straight after a list); reset by an event."""
        quiet_ends = 0
        """Streams in a row the server ended; reset by an event."""
        while True:
            try:
                if self.resource_version is None:
                    yield self._dispatch(self._replace(await self._list()))
                events = self._kube.watch(
                    self.resource,
                    self.namespace,
                    resource_version=self.resource_version or "",
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    timeout_seconds=self._watch_timeout,
                )
                # aclosing: the stream's connection is released when the consumer stops, not whenever the
                # abandoned generator is collected (an unclosed socket would outlive the wait).
                async with contextlib.aclosing(events) as stream:
                    async for event_type, obj in stream:
                        failures = quiet_ends = 0
                        version = obj.get("metadata", {}).get("resourceVersion")
                        if version:
                            self.resource_version = str(version)
                        if event_type == "BOOKMARK":
                            continue
                        change = self._apply(event_type, obj)
                        if change is not None:
                            yield self._dispatch([change])
            except KubeApiError as error:
                if error.status == 410:
                    self.resource_version = None
                    failures += 1
                    # The first expiry re-lists at once; one that comes again before any event backs off.
                    if failures > 1:
                        await anyio.sleep(backoff_delay(failures - 1))
                    continue
                if error.status not in RETRYABLE_STATUS:
                    raise
                failures += 1
                await anyio.sleep(backoff_delay(failures))
            except KubeUnavailable:
                failures += 1
                await anyio.sleep(backoff_delay(failures))
            else:
                # The server ended the stream normally: resume from the last version, but not in a tight
                # loop when it keeps ending streams before anything happens.
                quiet_ends += 1
                await anyio.sleep(backoff_delay(quiet_ends))

    async def _list(self) -> KubeObject:
        return await self._kube.list(
            self.resource, self.namespace, label_selector=self.label_selector, field_selector=self.field_selector
        )

    def _replace(self, listed: KubeObject) -> list[Change]:
        """Make a fresh list the cache; return how it differs from the cache before."""
        fresh = {object_key(obj): obj for obj in listed["items"]}
        changes = [Change("DELETED", key, obj) for key, obj in self.objects.items() if key not in fresh]
        for key, obj in fresh.items():
            before = self.objects.get(key)
            if before is None:
                changes.append(Change("ADDED", key, obj))
            elif _version(before) != _version(obj):
                changes.append(Change("MODIFIED", key, obj))
        self.objects = fresh
        self.resource_version = str(listed.get("metadata", {}).get("resourceVersion", ""))
        self.lists += 1
        return changes

    def _apply(self, event_type: str, obj: KubeObject) -> Change | None:
        key = object_key(obj)
        if event_type == "DELETED":
            self.objects.pop(key, None)
            return Change("DELETED", key, obj)
        if event_type in ("ADDED", "MODIFIED"):
            existed = key in self.objects
            self.objects[key] = obj
            return Change("MODIFIED" if existed else "ADDED", key, obj)
        return None

    def _dispatch(self, changes: list[Change]) -> list[Change]:
        for callback in self._callbacks:
            callback(changes)
        self._changed.set()
        self._changed = anyio.Event()
        return changes


def _version(obj: KubeObject) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))
