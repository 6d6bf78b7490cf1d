"""Rules: permissions merged per scope, in one canonical, sorted form."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kibertas_async.checks.check import Permission
from kibertas_async.diagnostics.permissions import DIAGNOSTICS_PERMISSIONS

if TYPE_CHECKING:
    from kibertas_async.checks import Check

CLUSTER_WIDE: str | None = None
"""The scope of the ClusterRole (a :class:`RuleSet` key), beside fixed namespaces' Roles."""

ENGINE_PERMISSIONS: tuple[Permission, ...] = (
    # ctx.namespace(): create; get it by name before retrying a POST whose answer was lost; delete it
    # (uid precondition) at cleanup and wait, by list-then-watch, until it is gone.
    Permission("", ("namespaces",), ("create", "delete", "get", "list", "watch")),
    # connect(): every cluster is proven to answer before its checks start.
    Permission(verbs=("get",), non_resource_urls=("/version",)),
    *DIAGNOSTICS_PERMISSIONS,
)
"""What the engine needs whatever the checks: the throwaway namespaces, ``GET /version`` and the failure
diagnostics' events, pods and logs."""


@dataclass(frozen=True)
class Rule:
    """One RBAC policy rule: ``verbs`` on ``resources`` of ``api_group``, or on ``non_resource_urls``."""

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    non_resource_urls: tuple[str, ...] = ()

    @property
    def sort_key(self) -> tuple[bool, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """Object rules first (by group, then resources), then non-resource rules."""
        return (bool(self.non_resource_urls), self.api_group, self.resources, self.non_resource_urls, self.verbs)

    def manifest(self) -> dict[str, Any]:
        """The rule as it goes into a (Cluster)Role, keys in the API's documented order."""
        if self.non_resource_urls:
            return {"nonResourceURLs": list(self.non_resource_urls), "verbs": list(self.verbs)}
        return {"apiGroups": [self.api_group], "resources": list(self.resources), "verbs": list(self.verbs)}

    def describe(self) -> str:
        """One line, as ``run --dry-run`` shows it: ``apps deployments: create,delete,get``."""
        if self.non_resource_urls:
            return f"nonResourceURLs {','.join(self.non_resource_urls)}: {','.join(self.verbs)}"
        return f"{self.api_group or 'core'} {','.join(self.resources)}: {','.join(self.verbs)}"

    def grants(self) -> list[tuple[str, str, str]]:
        """Every single ``(api_group or "nonResourceURL", resource or path, verb)`` the rule allows."""
        if self.non_resource_urls:
            return [("nonResourceURL", path, verb) for path in self.non_resource_urls for verb in self.verbs]
        return [(self.api_group, resource, verb) for resource in self.resources for verb in self.verbs]


RuleSet = dict[str | None, list[Rule]]
"""Scope (``None``: cluster-wide, else a namespace) → its merged rules; scopes sorted, cluster-wide first."""


def merge(permissions: Iterable[Permission]) -> RuleSet:
    """Merge permissions into the fewest rules that grant exactly what they grant, per scope.

    The union of verbs per (scope, group, resource) first; then resources of one group with the same
    verbs share one rule (never across groups: a rule's groups and resources are a cross product, which
    would grant more). Non-resource URLs with the same verbs share one rule. Everything is sorted.
    """
    verbs: dict[tuple[str | None, str, str, bool], set[str]] = defaultdict(set)
    for permission in permissions:
        targets = permission.non_resource_urls or permission.resources
        for target in targets:
            key = (permission.namespace, permission.api_group, target, bool(permission.non_resource_urls))
            verbs[key].update(permission.verbs)
    grouped: dict[tuple[str | None, str, bool, tuple[str, ...]], list[str]] = defaultdict(list)
    for (scope, group, target, is_url), verb_set in verbs.items():
        grouped[(scope, group, is_url, tuple(sorted(verb_set)))].append(target)
    rules: RuleSet = {}
    for (scope, group, is_url, verb_list), members in grouped.items():
        names = tuple(sorted(members))
        rule = Rule("", (), verb_list, names) if is_url else Rule(group, names, verb_list)
        rules.setdefault(scope, []).append(rule)
    ordered: RuleSet = {}
    for scope in sorted(rules, key=lambda name: (name is not None, name or "")):
        ordered[scope] = sorted(rules[scope], key=lambda rule: rule.sort_key)
    return ordered


def rbac_rules(checks: Sequence[type[Check]]) -> RuleSet:
    """The rules ``checks`` need, the engine's own (:data:`ENGINE_PERMISSIONS`) included."""
    return merge([*ENGINE_PERMISSIONS, *(permission for check in checks for permission in check.permissions)])


def permission_json(permission: Permission) -> dict[str, Any]:
    """A declaration as ``list --json`` shows it (RBAC's own field names)."""
    if permission.non_resource_urls:
        return {"nonResourceURLs": list(permission.non_resource_urls), "verbs": list(permission.verbs)}
    shown: dict[str, Any] = {
        "apiGroup": permission.api_group,
        "resources": list(permission.resources),
        "verbs": list(permission.verbs),
    }
    if permission.namespace is not None:
        shown["namespace"] = permission.namespace
    return shown
