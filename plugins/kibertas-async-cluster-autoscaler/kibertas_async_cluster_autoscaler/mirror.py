"""The scale-up proof's view of a collection: an :class:`~kibertas_async.kube.Informer` that also
remembers when each object first appeared (how long after the probe a node joined), and a
:class:`Wakeup` that re-evaluates a condition over several of them whenever any one changes."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence

import anyio

from kibertas_async import Change, Informer, KubeClient, Resource

__all__ = ["Mirror", "Wakeup"]


class Mirror(Informer):
    """The objects of one collection, kept by the kube layer's informer, and when each was first seen."""

    def __init__(
        self,
        kube: KubeClient,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        super().__init__(kube, resource, namespace, label_selector=label_selector, field_selector=field_selector)
        self.first_seen: dict[str, float] = {}
        """Key → ``anyio.current_time()`` when this mirror first saw the object (kept after deletion)."""
        self.on_change(self._note_arrivals)

    def _note_arrivals(self, changes: Sequence[Change]) -> None:
        now = anyio.current_time()
        for change in changes:
            if change.type != "DELETED":
                self.first_seen.setdefault(change.key, now)


async def _never() -> float:
    return math.inf


class Wakeup:
    """Wakes a waiter whenever any of the attached informers changes.

    A condition over two collections (the nodes *and* the NodeClaims gone) waited on one informer alone
    is only looked at again when that one changes: if the other changes last, the wait never ends.
    """

    def __init__(self, *informers: Informer) -> None:
        self._changed = anyio.Event()
        for informer in informers:
            self.attach(informer)

    def attach(self, informer: Informer) -> None:
        """Also wake on ``informer``'s changes."""
        informer.on_change(self._notify)

    def _notify(self, _changes: Sequence[Change]) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def until(self, done: Callable[[], bool], judge: Callable[[], Awaitable[float]] = _never) -> None:
        """Return once ``done()`` holds, looking again after every change of an attached informer.

        While not done, ``judge()`` runs too (it may end the check, e.g. ``ctx.fail``) and returns when
        (``anyio.current_time()``) it wants to run again even if nothing changes; ``math.inf``: never.
        """
        while True:
            changed = self._changed
            if done():
                return
            again = await judge()
            with anyio.move_on_after(max(0.0, again - anyio.current_time())):
                await changed.wait()
