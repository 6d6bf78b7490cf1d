"""What a check is: a class a plugin registers, declaring what it needs, with one async ``run``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from kibertas_async.checks.context import CheckContext
    from kibertas_async.options import Option


@dataclass(frozen=True)
class Permission:
    """Kubernetes access a check needs: ``kibertas-async rbac`` generates least-privilege RBAC from these.

    ``Permission(api_group, resources, verbs)`` is a rule on objects; ``Permission(verbs=("get",),
    non_resource_urls=("/apis/example.com/v1",))`` one on paths that are not objects. Declare every verb the
    check's code paths use, retries and failure diagnostics included: ``ctx.create`` may ``get`` the object
    (``list`` for ``generateName``) before retrying a POST whose answer was lost, its cleanup
    deletes it, and ``ctx.wait_for`` and informers ``list`` and ``watch``. The throwaway namespaces
    ``ctx.namespace()`` makes are the engine's own declaration, not the check's.
    """

    api_group: str = ""
    """``""`` for the core group."""
    resources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    namespace: str | None = None
    """A fixed namespace the access is limited to (e.g. ``kube-system``): it becomes a Role and RoleBinding
    there. ``None`` (the default) grants it cluster-wide, in the ClusterRole: what a check does in its own
    throwaway namespace needs that, because the namespace's name is only known at run time, and so do
    cluster-scoped kinds."""
    non_resource_urls: tuple[str, ...] = ()
    """Paths that are not objects (``/version``, ``/apis/GROUP/VERSION``), instead of ``resources``;
    cluster-wide only."""

    def __post_init__(self) -> None:
        if not self.verbs:
            raise ValueError("Permission: give at least one verb")
        if bool(self.resources) == bool(self.non_resource_urls):
            raise ValueError("Permission: give either resources or non_resource_urls")
        if self.non_resource_urls and (self.api_group or self.namespace is not None):
            raise ValueError("Permission: non_resource_urls take no api_group or namespace (they are cluster-wide)")


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
