"""The ServiceAccount, roles and bindings for a set of rules, and their YAML or JSON text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kibertas_async.rbac import FORMATS
from kibertas_async.rbac._rules import CLUSTER_WIDE, RuleSet

RBAC_API = "rbac.authorization.k8s.io/v1"
NAME_LABEL = "app.kubernetes.io/name"
CHECKS_ANNOTATION = "kibertas-async/checks"
"""Which checks the roles were generated for (comma-separated, sorted)."""


def rbac_manifests(
    rules: RuleSet, checks: Sequence[str], *, namespace: str, service_account: str
) -> list[dict[str, Any]]:
    """ServiceAccount ``namespace/service_account``; ClusterRole and ClusterRoleBinding of the same name;
    a Role and RoleBinding of that name in each fixed namespace the rules name.

    Not labelled ``app.kubernetes.io/managed-by=kibertas-async``: ``kibertas-async cleanup`` deletes
    everything that carries it.
    """
    labels = {NAME_LABEL: "kibertas-async"}
    annotations = {CHECKS_ANNOTATION: ",".join(sorted(checks))}
    subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": service_account, "namespace": namespace, "labels": labels},
        }
    ]
    for scope, scoped_rules in rules.items():
        role_kind = "ClusterRole" if scope is CLUSTER_WIDE else "Role"
        where = {} if scope is CLUSTER_WIDE else {"namespace": scope}
        metadata = {"name": service_account, **where, "labels": labels, "annotations": annotations}
        documents.append(
            {
                "apiVersion": RBAC_API,
                "kind": role_kind,
                "metadata": metadata,
                "rules": [rule.manifest() for rule in scoped_rules],
            }
        )
        documents.append(
            {
                "apiVersion": RBAC_API,
                "kind": f"{role_kind}Binding",
                "metadata": {"name": service_account, **where, "labels": labels},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": service_account},
                "subjects": [subject],
            }
        )
    return documents


def render(documents: Sequence[dict[str, Any]], output_format: str) -> str:
    """YAML documents (``---`` separated), or JSON as a ``v1`` ``List``; keys in the order built."""
    if output_format == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(documents)}, indent=2) + "\n"
    if output_format != "yaml":
        raise ValueError(f"unknown format {output_format!r} (use {' or '.join(FORMATS)})")
    import yaml

    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True, default_flow_style=False)
