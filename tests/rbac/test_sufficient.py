"""Sufficient: every built-in check passes on both sandbox clusters (RBAC on) when run as the service
account ``kibertas-async rbac --all`` generates, with a token from the TokenRequest API."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kibertas_async.sandbox.addons.discovery import RUN_CONFIG_NAME
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import TEST_CLUSTER_NAMES, kubectl
from tests.rbac.access import (
    NAMESPACE,
    Identity,
    apply,
    cli,
    generated,
    run_report,
    token,
    wait_until_authorizer,
    write_kubeconfig,
)

SERVICE_ACCOUNT = "kibertas-async"


@pytest.fixture(scope="module")
def service_account_kubeconfig(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The generated manifests applied to both clusters; a kubeconfig whose contexts (named like the
    clusters) use the service account's token. Removed again afterwards."""
    manifests = generated("--all", service_account=SERVICE_ACCOUNT)
    identities = []
    for name in TEST_CLUSTER_NAMES:
        cluster = sandbox.cluster(name)
        apply(sandbox, cluster, manifests)
        wait_until_authorizer(cluster, SERVICE_ACCOUNT, "create", "", "namespaces", allowed=True)
        identities.append(Identity(name, cluster, SERVICE_ACCOUNT, token(sandbox, cluster, SERVICE_ACCOUNT)))
    yield write_kubeconfig(tmp_path_factory.mktemp("rbac-sufficient") / "kubeconfig", identities)
    for name in TEST_CLUSTER_NAMES:
        kubectl(sandbox, name, "delete", "--wait=false", "-f", "-", input=manifests, check=False)


def test_every_check_passes_as_the_generated_service_account(
    sandbox: Sandbox, service_account_kubeconfig: Path, tmp_path: Path
) -> None:
    installed = {row["name"] for row in json.loads(cli("list", "--json").stdout)["checks"]}
    result, report = run_report(
        service_account_kubeconfig,
        TEST_CLUSTER_NAMES,
        sandbox.state_dir / RUN_CONFIG_NAME,
        tmp_path / "report.json",
        "--all",
        "--check-timeout",
        "3m",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert set(report["checks"]) == installed
    outcomes = {(r["cluster"], r["check"]): r["outcome"] for r in report["results"]}
    # The sandbox serves Karpenter's API, so karpenter must pass too, not skip.
    assert outcomes == {(cluster, check): "passed" for cluster in TEST_CLUSTER_NAMES for check in installed}
    for item in (item for r in report["results"] for item in r["cleanup"]):
        assert item["status"] == "done", item
    assert "forbidden" not in result.stderr.lower()


def test_the_run_really_was_the_service_account(sandbox: Sandbox, service_account_kubeconfig: Path) -> None:
    """The kubeconfig carries no admin credential: what the role does not grant is refused."""
    for name in TEST_CLUSTER_NAMES:
        as_service_account = [f"--kubeconfig={service_account_kubeconfig}", f"--context={name}"]
        refused = subprocess.run(
            [str(sandbox.binaries.kubectl), *as_service_account, "get", "configmaps", "-n", NAMESPACE],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert refused.returncode != 0
        denied = f'User "system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}" cannot list resource "configmaps"'
        assert denied in refused.stderr
