"""Least-privilege RBAC generated from the checks' :class:`~kibertas_async.checks.Permission` declarations.

:func:`rbac_rules` merges what the selected checks declare with what the engine itself needs
(:data:`ENGINE_PERMISSIONS`) into sorted, merged :class:`Rule`\\ s, per scope (cluster-wide, or one fixed
namespace); :func:`rbac_manifests` turns them into a ServiceAccount, a ClusterRole and ClusterRoleBinding,
and a Role and RoleBinding per fixed namespace; :func:`render` prints those as YAML or JSON. The same
input always gives byte-identical output. ``kibertas-async rbac`` (:mod:`kibertas_async.rbac.cli`) is the
command, and ``run --dry-run`` shows the same rules. Names load on first use, so ``--help`` stays fast.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kibertas_async.rbac._manifests import rbac_manifests, render
    from kibertas_async.rbac._rules import (
        CLUSTER_WIDE,
        ENGINE_PERMISSIONS,
        Rule,
        RuleSet,
        merge,
        permission_json,
        rbac_rules,
    )

FORMATS = ("yaml", "json")
"""What ``kibertas-async rbac --format`` takes and :func:`render` writes."""

_MODULES = {
    "rbac_manifests": "_manifests",
    "render": "_manifests",
    "CLUSTER_WIDE": "_rules",
    "ENGINE_PERMISSIONS": "_rules",
    "Rule": "_rules",
    "RuleSet": "_rules",
    "merge": "_rules",
    "permission_json": "_rules",
    "rbac_rules": "_rules",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)


__all__ = [
    "CLUSTER_WIDE",
    "ENGINE_PERMISSIONS",
    "FORMATS",
    "Rule",
    "RuleSet",
    "merge",
    "permission_json",
    "rbac_manifests",
    "rbac_rules",
    "render",
]
