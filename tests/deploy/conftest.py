"""Renderings of deploy/ (kustomize and the Helm chart), and the tools that make them.

kubectl (for ``kubectl kustomize``) is the sandbox's own; helm comes from ``scripts/helm``, which builds
it from the Go module proxy once. When either cannot be had, the tests that need it skip with the
reason, except under CI (``$CI`` true): then they fail with it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from kibertas_async.sandbox.build import binaries_for
from kibertas_async.testing import ci_requires_sandbox

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
OVERLAYS = DEPLOY / "overlays"
CHART = DEPLOY / "helm" / "kibertas-async"
HELM_SCRIPT = ROOT / "scripts" / "helm"
CLI = ROOT / ".venv" / "bin" / "kibertas-async"

RBAC_COMMAND = ("rbac", "--all", "--namespace", "kibertas-async", "--format", "yaml")
"""How deploy/base/rbac.yaml and the chart's files/rbac.yaml are generated (docs/deploy.md)."""

HELM_VARIANTS: dict[str, tuple[str, ...]] = {
    "default": (),
    "schedule": ("--set", "schedule=0 3 * * *"),
    "argocd-hook": ("--set", "argocd.hook=true"),
}
"""The chart's renderings under test: values given to ``helm template``."""


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail with it under CI."""
    if ci_requires_sandbox():
        pytest.fail(reason)
    pytest.skip(reason)


def documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a rendering."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kubectl_binary() -> Path:
    """The sandbox's kubectl (it has ``kubectl kustomize``)."""
    kubectl = binaries_for().kubectl
    if not os.access(kubectl, os.X_OK):
        unavailable(f"{kubectl} is missing: build the sandbox binaries with `kibertas-async sandbox build`")
    return kubectl


def kustomize(directory: Path) -> str:
    """``kubectl kustomize DIRECTORY``."""
    result = subprocess.run(
        [str(kubectl_binary()), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return result.stdout


def kustomize_in_namespace(directory: Path, namespace: str, scratch: Path) -> str:
    """``directory`` rendered through a kustomization that only sets another namespace (as a user's
    overlay would)."""
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": namespace,
                "resources": [os.path.relpath(directory, scratch)],
            }
        )
    )
    return kustomize(scratch)


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary ``scripts/helm`` prints (building it the first time, about 2 minutes)."""
    try:
        result = subprocess.run([str(HELM_SCRIPT)], capture_output=True, text=True, timeout=1200)
    except (OSError, subprocess.TimeoutExpired) as error:
        unavailable(f"scripts/helm could not build helm: {error}")
    if result.returncode != 0:
        unavailable(f"scripts/helm could not build helm (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def helm_environment() -> dict[str, str]:
    """The environment for helm: its cache, config and data directories off the user's home."""
    scratch = Path(tempfile.gettempdir()) / "kibertas-async-tests-helm"
    return {**os.environ, **{f"HELM_{kind}_HOME": str(scratch / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}}


def helm_template(helm: Path, *values: str, namespace: str = "kibertas-async", release: str = "kibertas-async") -> str:
    """``helm template`` of the chart with ``values`` (e.g. ``--set schedule=...``)."""
    result = subprocess.run(
        [str(helm), "template", release, str(CHART), "--namespace", namespace, *values],
        capture_output=True,
        text=True,
        timeout=120,
        env=helm_environment(),
    )
    assert result.returncode == 0, f"helm template {' '.join(values)} failed:\n{result.stderr}"
    return result.stdout


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc.get("kind") == kind]


def job_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The Job spec of a rendering: the Job's, or the CronJob's jobTemplate's."""
    jobs = by_kind(docs, "Job")
    cronjobs = by_kind(docs, "CronJob")
    assert len(jobs) + len(cronjobs) == 1, "expected exactly one Job or CronJob"
    spec: dict[str, Any] = jobs[0]["spec"] if jobs else cronjobs[0]["spec"]["jobTemplate"]["spec"]
    return spec
