"""Drop each grant of a check's generated role in turn and run the check without it.

Every variant is its own service account (``drop-<verb>-<resource>.<group>``) bound to the role minus
one grant, and its own kubeconfig context on the same sandbox cluster, so one ``run`` with every
context as a "cluster" runs all the variants at once instead of one after another.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kibertas_async.checks import Check, Permission
from kibertas_async.rbac import merge, rbac_manifests, rbac_rules
from kibertas_async.sandbox.addons.discovery import RUN_CONFIG_NAME
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from tests.rbac.access import (
    NAMESPACE,
    Identity,
    apply,
    can_i,
    run_report,
    token,
    wait_until_authorizer,
    write_kubeconfig,
)

Grant = tuple[str, str, str]
"""``(api_group or "nonResourceURL", resource or path, verb)``: one thing a role allows."""


def grants_of(check: type[Check]) -> list[Grant]:
    """Every single grant of the check's generated ClusterRole (the engine's included), in rule order."""
    return [grant for rules in rbac_rules([check]).values() for rule in rules for grant in rule.grants()]


def without(grants: list[Grant], dropped: Grant | None) -> list[Permission]:
    """The grants but ``dropped`` (all of them for ``None``), as permissions."""
    kept = []
    for group, target, verb in grants:
        if (group, target, verb) == dropped:
            continue
        if group == "nonResourceURL":
            kept.append(Permission(verbs=(verb,), non_resource_urls=(target,)))
        else:
            kept.append(Permission(group, (target,), (verb,)))
    return kept


def authorizer_target(grant: Grant) -> str:
    """How ``kubectl auth can-i`` names the grant's target."""
    group, target, _verb = grant
    if group == "nonResourceURL":
        return target
    return f"{target}.{group}" if group else target


def account_name(grant: Grant) -> str:
    """``drop-get-certificates.cert-manager.io``, ``drop-get-version``: a valid ServiceAccount name."""
    group, target, verb = grant
    stem = target.strip("/").replace("/", "-") if group == "nonResourceURL" else authorizer_target(grant)
    return re.sub(r"[^a-z0-9.-]", "-", f"drop-{verb}-{stem}")[:253]


@dataclass
class Variant:
    """One check run without one grant."""

    grant: Grant
    service_account: str
    granted_anyway: bool
    """The cluster's default roles (``system:discovery``, ``system:public-info-viewer``, bound to every
    authenticated user) still allow it: dropping it from our role proves nothing."""
    result: dict[str, Any] | None = None
    """The check's result from the JSON report (``None`` when it was not run)."""

    def describe(self) -> str:
        """``get certificates.cert-manager.io``."""
        return f"{self.grant[2]} {authorizer_target(self.grant)}"


def drop_each_grant(
    sandbox: Sandbox,
    cluster: SandboxCluster,
    check: type[Check],
    work: Path,
    *,
    run_id: str,
    check_timeout: str = "60s",
) -> list[Variant]:
    """Run ``check`` once per grant of its role, without that grant (one run, every variant at once)."""
    grants = grants_of(check)
    variants = []
    documents: list[dict[str, Any]] = []
    for grant in grants:
        name = account_name(grant)
        documents += rbac_manifests(
            merge(without(grants, grant)), [check.name], namespace=NAMESPACE, service_account=name
        )
        variants.append(Variant(grant, name, granted_anyway=False))
    apply(sandbox, cluster, json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
    identities = []
    for variant in variants:
        kept = next(other for other in grants if other != variant.grant)
        wait_until_authorizer(cluster, variant.service_account, kept[2], kept[0], kept[1], allowed=True)
        group, target, verb = variant.grant
        variant.granted_anyway = can_i(cluster, variant.service_account, verb, group, target)
        if not variant.granted_anyway:
            account = variant.service_account
            identities.append(Identity(account, cluster, account, token(sandbox, cluster, account)))
    kubeconfig = write_kubeconfig(work / "kubeconfig", identities)
    config = work / "config.yaml"
    settings = yaml.safe_load((sandbox.state_dir / RUN_CONFIG_NAME).read_text())["clusters"][cluster.name]
    config.write_text(yaml.safe_dump({"defaults": settings}), encoding="utf-8")
    contexts = [identity.context for identity in identities]
    _, report = run_report(
        kubeconfig,
        contexts,
        config,
        work / "report.json",
        check.name,
        "--check-timeout",
        check_timeout,
        "--concurrency",
        str(len(contexts)),
        "--cluster-concurrency",
        str(len(contexts)),
        "--run-id",
        run_id,
    )
    by_context = {item["cluster"]: item for item in report["results"]}
    for variant in variants:
        variant.result = by_context.get(variant.service_account)
    return variants


def forbidden_text(grant: Grant) -> str:
    """What the API server's 403 says about this grant: ``cannot get resource "certificates" in API
    group "cert-manager.io"``."""
    group, target, verb = grant
    return f'cannot {verb} resource "{target}" in API group "{group}"'
