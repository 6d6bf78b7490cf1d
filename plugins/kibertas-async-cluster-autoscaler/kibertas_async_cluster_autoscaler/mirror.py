"""The scale-up proof's view of a collection: an :class:`~kibertas_async.kube.Informer` that also
remembers when each object first appeared (how long after the probe a node joined)."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from kibertas_async import Change, Informer, KubeClient, Resource

__all__ = ["Mirror"]


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
