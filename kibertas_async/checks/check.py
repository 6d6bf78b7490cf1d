"""What a check is: a class a plugin registers, declaring what it needs, with one async ``run``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from kibertas_async.checks.context import CheckContext
    from kibertas_async.options import Option


@dataclass(frozen=True)
class Permission:
    """Kubernetes access a check needs; used to generate least-privilege RBAC for the in-cluster Job."""

    api_group: str
    """``""`` for the core group."""
    resources: tuple[str, ...]
    verbs: tuple[str, ...]


class Check:
    """Base class of every check. Subclass it, fill the class attributes and write :meth:`run`.

    The engine makes one instance per cluster, so instance state is per cluster.
    """

    name: ClassVar[str]
    """Unique, lower-case, ``-`` separated: what users type (``kibertas-async run ingress``)."""
    description: ClassVar[str]
    """One line for ``kibertas-async list``."""
    tags: ClassVar[frozenset[str]] = frozenset()
    """Words for ``--tags`` selection."""
    timeout: ClassVar[float] = 900.0
    """Seconds the whole check (not counting cleanup) may take unless ``--check-timeout`` says otherwise."""
    permissions: ClassVar[tuple[Permission, ...]] = ()
    """Kubernetes access needed, beyond the throwaway namespace the context creates."""
    options: ClassVar[tuple[Option[Any], ...]] = ()
    """Options this check reads; registered with the plugin that registers the check."""
    creates: ClassVar[tuple[str, ...]] = ()
    """What the check creates, for ``--dry-run`` (e.g. ``"Deployment sample"``)."""
    exclusive: ClassVar[str | None] = None
    """Checks with the same value never run at the same time on the same cluster (e.g. ``"node-count"``)."""
    needs_kubernetes: ClassVar[bool] = True
    """If true, the cluster's API server must answer before the check starts (else the check is ERROR)."""

    async def run(self, ctx: CheckContext) -> None:
        """Prove the add-on works, step by step. Return to pass; ``ctx.fail(...)`` for NG."""
        raise NotImplementedError(f"check {type(self).__name__} does not implement run()")
