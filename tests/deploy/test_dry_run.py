"""Every rendering of deploy/ is accepted by a real API server: ``kubectl apply --dry-run=server`` on the
sandbox (admission, schema and field validation; nothing is stored), each into a namespace of its own."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl
from tests.deploy.conftest import (
    BASE,
    CLI,
    HELM_VARIANTS,
    OVERLAYS,
    by_kind,
    documents,
    helm_template,
    job_spec,
    kustomize,
    kustomize_in_namespace,
)

CLUSTER = "sandbox-1"


@pytest.fixture
def namespace(sandbox: Sandbox) -> Iterator[str]:
    name = f"deploy-dry-run-{secrets.token_hex(4)}"
    kubectl(sandbox, CLUSTER, "create", "namespace", name)
    yield name
    kubectl(sandbox, CLUSTER, "delete", "namespace", name, "--wait=false")


def dry_run(sandbox: Sandbox, rendering: str, namespace: str) -> None:
    docs = documents(rendering)
    assert all(doc["metadata"].get("namespace") in (None, namespace) for doc in docs)
    result = kubectl(sandbox, CLUSTER, "apply", "--dry-run=server", "-f", "-", input=rendering, check=False)
    assert result.returncode == 0, f"server-side dry-run refused it:\n{result.stderr}"
    # One line per object: "<kind>/<name> created (server dry run)" (or configured, when it exists).
    assert len([line for line in result.stdout.splitlines() if "(server dry run)" in line]) == len(docs), result.stdout


@pytest.mark.parametrize("directory", [BASE, OVERLAYS / "argocd-postsync", OVERLAYS / "cronjob"], ids=lambda p: p.name)
def test_kustomize_server_dry_run(sandbox: Sandbox, namespace: str, directory: Path, tmp_path: Path) -> None:
    dry_run(sandbox, kustomize_in_namespace(directory, namespace, tmp_path / "overlay"), namespace)


@pytest.mark.parametrize("variant", list(HELM_VARIANTS))
def test_helm_server_dry_run(sandbox: Sandbox, namespace: str, helm: Path, variant: str) -> None:
    rendering = helm_template(helm, *HELM_VARIANTS[variant], namespace=namespace)
    # helm template leaves namespaced objects without a namespace (helm install adds it): say it.
    apply = ("apply", "--dry-run=server", "--namespace", namespace, "-f", "-")
    result = kubectl(sandbox, CLUSTER, *apply, input=rendering, check=False)
    assert result.returncode == 0, f"server-side dry-run refused it:\n{result.stderr}"
    assert len([line for line in result.stdout.splitlines() if "(server dry run)" in line]) == len(documents(rendering))


@pytest.mark.parametrize("source", ["kustomize", "helm"])
def test_the_container_args_and_config_are_accepted_by_the_cli(
    sandbox: Sandbox, helm: Path, source: str, tmp_path: Path
) -> None:
    """The Job's args, with its rendered --config file, make a valid ``run`` (checked with --dry-run on a
    sandbox cluster instead of the pod's own)."""
    docs = documents(kustomize(BASE) if source == "kustomize" else helm_template(helm))
    (configmap,) = by_kind(docs, "ConfigMap")
    config = tmp_path / "kibertas-async.yaml"
    config.write_text(configmap["data"]["kibertas-async.yaml"])
    (container,) = job_spec(docs)["template"]["spec"]["containers"]
    args = list(container["args"])
    args[args.index("--config") + 1] = str(config)
    result = subprocess.run(
        [str(CLI), *args, "--dry-run", "--kubeconfig", str(sandbox.kubeconfig), "--clusters", CLUSTER],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
