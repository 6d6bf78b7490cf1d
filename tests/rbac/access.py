"""Acting as a generated service account on a sandbox cluster: apply manifests, get a token from the
TokenRequest API, write a kubeconfig that uses it, run the CLI with it, ask the authorizer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.testing import kubectl
from kibertas_async.testing.waiting import eventually

NAMESPACE = "ops"
"""The namespace the tests' service accounts live in (the command's default)."""


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``kibertas-async ARGS`` in a subprocess, text output, never raising on its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "kibertas_async", *args], capture_output=True, text=True, check=False, timeout=timeout
    )


def generated(*selection: str, service_account: str = "kibertas-async", output: str = "json") -> str:
    """What ``kibertas-async rbac SELECTION`` prints for a service account in :data:`NAMESPACE`."""
    result = cli("rbac", *selection, "--namespace", NAMESPACE, "--service-account", service_account, "--format", output)
    assert result.returncode == 0, result.stderr
    return result.stdout


def apply(sandbox: Sandbox, cluster: SandboxCluster, manifests: str) -> None:
    """``kubectl apply`` as the sandbox's admin; :data:`NAMESPACE` is created first if missing."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    kubectl(sandbox, cluster, "apply", "-f", "-", input=json.dumps(namespace))
    kubectl(sandbox, cluster, "apply", "-f", "-", input=manifests)


def token(sandbox: Sandbox, cluster: SandboxCluster, service_account: str) -> str:
    """A one-hour token for the service account, from the TokenRequest API
    (``POST serviceaccounts/NAME/token``, what ``kubectl create token`` sends)."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}}
    answer = cluster.api().create(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{service_account}/token", request)
    return str(answer["status"]["token"])


@dataclass(frozen=True)
class Identity:
    """One kubeconfig context: a service account's token on one sandbox cluster."""

    context: str
    cluster: SandboxCluster
    service_account: str
    token: str


def write_kubeconfig(path: Path, identities: Sequence[Identity]) -> Path:
    """A kubeconfig with one context per identity; server and CA are the sandbox cluster's."""
    clusters = {
        identity.cluster.name: {
            "server": identity.cluster.server,
            "certificate-authority": str(identity.cluster.ca_file),
        }
        for identity in identities
    }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster} for name, cluster in clusters.items()],
        "users": [{"name": identity.context, "user": {"token": identity.token}} for identity in identities],
        "contexts": [
            {"name": identity.context, "context": {"cluster": identity.cluster.name, "user": identity.context}}
            for identity in identities
        ],
        "current-context": identities[0].context,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def can_i(cluster: SandboxCluster, service_account: str, verb: str, group: str, target: str) -> bool:
    """Whether the authorizer lets the service account do ``verb`` on ``target`` (a resource of ``group``,
    or a path when ``group`` is ``"nonResourceURL"``): a SubjectAccessReview, with the groups every
    service account has (so the cluster's default bindings count, as they do for a real request)."""
    attributes = (
        {"nonResourceAttributes": {"verb": verb, "path": target}}
        if group == "nonResourceURL"
        else {"resourceAttributes": {"verb": verb, "group": group, "resource": target}}
    )
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{NAMESPACE}:{service_account}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}", "system:authenticated"],
            **attributes,
        },
    }
    answer = cluster.api().create("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    return bool(answer.get("status", {}).get("allowed"))


def wait_until_authorizer(
    cluster: SandboxCluster, service_account: str, verb: str, group: str, target: str, *, allowed: bool
) -> None:
    """RBAC changes reach the authorizer through its informers: wait until it answers as expected."""
    eventually(
        f"{service_account} {verb} {group}/{target} allowed={allowed}",
        lambda: can_i(cluster, service_account, verb, group, target),
        lambda answer: answer == allowed,
        every=0.1,
    )


def run_report(
    kubeconfig: Path, contexts: Sequence[str], config: Path, report: Path, *args: str, timeout: float = 240
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``kibertas-async run ARGS`` on ``contexts`` with ``kubeconfig``; the process and its JSON report."""
    result = cli(
        "run",
        *args,
        "--clusters",
        ",".join(contexts),
        "--kubeconfig",
        str(kubeconfig),
        "--config",
        str(config),
        "--report-json",
        str(report),
        "--log-format",
        "json",
        "--no-summary",
        timeout=timeout,
    )
    assert report.exists(), result.stderr[-3000:]
    data: dict[str, Any] = json.loads(report.read_text())
    return result, data
