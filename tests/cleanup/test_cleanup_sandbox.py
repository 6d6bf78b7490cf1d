"""``kibertas-async cleanup`` against real API servers: every labelled kind swept, in any namespace and
cluster-scoped; nothing unlabelled or of another run touched; finalizers reported; one unreachable
cluster does not stop the others."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl

MANAGED_BY = {"app.kubernetes.io/managed-by": "kibertas-async"}
HOLD = "kibertas-async.test/hold"


def cleanup(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user (or a CronJob) runs it."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("KIBERTAS_ASYNC_")}
    script = Path(sys.executable).with_name("kibertas-async")
    return subprocess.run(
        [str(script), "cleanup", "--kubeconfig", str(kubeconfig), "--log-format", "json", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=environ,
    )


def apply(sandbox: Sandbox, cluster: str, *manifests: dict[str, Any]) -> None:
    kubectl(
        sandbox, cluster, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests})
    )


def exists(sandbox: Sandbox, cluster: str, kind: str, name: str, namespace: str | None = None) -> bool:
    where = ["-n", namespace] if namespace else []
    found = kubectl(sandbox, cluster, "get", kind, name, *where, "--ignore-not-found", "-o", "name")
    return bool(found.stdout.strip())


def configmap(name: str, labels: dict[str, str] | None = None, namespace: str = "default", **metadata: Any) -> Any:
    meta = {"name": name, "namespace": namespace, "labels": labels or {}, **metadata}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "b"}}


def test_cleanup_sweeps_every_labelled_kind_of_one_run_and_nothing_else(sandbox: Sandbox) -> None:
    suffix = secrets.token_hex(3)
    run_id, other_run = f"sweep-{suffix}", f"other-{suffix}"
    ours = {**MANAGED_BY, "kibertas-async/run-id": run_id}
    namespace = f"sweep-ns-{suffix}"
    apply(
        sandbox,
        "sandbox-1",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": ours}},
        configmap(f"left-{suffix}", ours),
        configmap(f"plain-{suffix}"),
        configmap(f"other-{suffix}", {**MANAGED_BY, "kibertas-async/run-id": other_run}),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"sweep-role-{suffix}", "labels": ours},
            "rules": [],
        },
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": f"sweep-priority-{suffix}", "labels": ours},
            "value": 10,
        },
    )
    apply(sandbox, "sandbox-1", configmap(f"inside-{suffix}", ours, namespace=namespace))
    try:
        dry = cleanup(sandbox.kubeconfig, "--clusters", "sandbox-1", "--run-id", run_id, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        would = {line for line in dry.stdout.splitlines() if " would delete " in line}
        assert would == {
            f"sandbox-1: would delete ConfigMap default/left-{suffix}",
            f"sandbox-1: would delete ConfigMap {namespace}/inside-{suffix}",
            f"sandbox-1: would delete ClusterRole sweep-role-{suffix}",
            f"sandbox-1: would delete PriorityClass sweep-priority-{suffix}",
            f"sandbox-1: would delete Namespace {namespace}",
        }
        assert exists(sandbox, "sandbox-1", "configmap", f"left-{suffix}", "default")

        swept = cleanup(sandbox.kubeconfig, "--clusters", "sandbox-1", "--run-id", run_id, "--timeout", "90s")
        assert swept.returncode == 0, swept.stdout + swept.stderr
        assert "sandbox-1: deleted 5 object(s)" in swept.stdout
        assert "Traceback" not in swept.stderr
        assert not exists(sandbox, "sandbox-1", "configmap", f"left-{suffix}", "default")
        assert not exists(sandbox, "sandbox-1", "clusterrole", f"sweep-role-{suffix}")
        assert not exists(sandbox, "sandbox-1", "priorityclass", f"sweep-priority-{suffix}")
        assert not exists(sandbox, "sandbox-1", "namespace", namespace)
        assert exists(sandbox, "sandbox-1", "configmap", f"plain-{suffix}", "default")
        assert exists(sandbox, "sandbox-1", "configmap", f"other-{suffix}", "default")
        events = [json.loads(line) for line in swept.stderr.splitlines() if line.startswith("{")]
        assert f"delete ClusterRole sweep-role-{suffix}" in [
            e.get("action") for e in events if e["event"] == "cleanup.done"
        ]
    finally:
        kubectl(
            sandbox,
            "sandbox-1",
            "delete",
            "configmap",
            f"plain-{suffix}",
            f"other-{suffix}",
            f"left-{suffix}",
            "--ignore-not-found",
            "--wait=false",
        )
        kubectl(sandbox, "sandbox-1", "delete", "clusterrole", f"sweep-role-{suffix}", "--ignore-not-found")
        kubectl(sandbox, "sandbox-1", "delete", "priorityclass", f"sweep-priority-{suffix}", "--ignore-not-found")
        kubectl(sandbox, "sandbox-1", "delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def test_what_a_finalizer_holds_is_listed_with_its_finalizers_and_exit_code_1(sandbox: Sandbox) -> None:
    suffix = secrets.token_hex(3)
    run_id = f"held-{suffix}"
    name = f"held-{suffix}"
    apply(sandbox, "sandbox-1", configmap(name, {**MANAGED_BY, "kibertas-async/run-id": run_id}, finalizers=[HOLD]))
    try:
        swept = cleanup(sandbox.kubeconfig, "--clusters", "sandbox-1", "--run-id", run_id, "--timeout", "2s")
        assert swept.returncode == 1, swept.stdout + swept.stderr
        assert (
            f"sandbox-1: could not delete ConfigMap default/{name}: still there after 2s (finalizers: {HOLD})"
            in swept.stdout
        )
        events = [json.loads(line) for line in swept.stderr.splitlines() if line.startswith("{")]
        assert [e["finalizers"] for e in events if e["event"] == "cleanup.failed"] == [[HOLD]]
    finally:
        kubectl(
            sandbox, "sandbox-1", "patch", "configmap", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
        )
        kubectl(sandbox, "sandbox-1", "delete", "configmap", name, "--ignore-not-found")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_cluster_is_reported_and_the_others_are_still_swept(sandbox: Sandbox, tmp_path: Path) -> None:
    suffix = secrets.token_hex(3)
    run_id = f"twin-{suffix}"
    document = yaml.safe_load(sandbox.kubeconfig.read_text())
    template = next(entry for entry in document["clusters"] if entry["name"] == "sandbox-2")
    user = next(entry for entry in document["contexts"] if entry["name"] == "sandbox-2")["context"]["user"]
    document["clusters"].append(
        {"name": "dead", "cluster": {**template["cluster"], "server": f"https://127.0.0.1:{_closed_port()}"}}
    )
    document["contexts"].append({"name": "dead", "context": {"cluster": "dead", "user": user}})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(document))
    apply(sandbox, "sandbox-2", configmap(f"twin-{suffix}", {**MANAGED_BY, "kibertas-async/run-id": run_id}))

    swept = cleanup(kubeconfig, "--clusters", "dead,sandbox-2", "--run-id", run_id, "--timeout", "30s")

    assert swept.returncode == 1, swept.stdout + swept.stderr
    lines = swept.stdout.splitlines()
    assert lines[0].startswith("dead: error: ") and "unreachable" in lines[0], lines
    assert "sandbox-2: deleted 1 object(s)" in lines
    assert not exists(sandbox, "sandbox-2", "configmap", f"twin-{suffix}", "default")
    assert "Traceback" not in swept.stderr
