"""The Kubernetes layer and the engine against real API servers: watches that survive restarts and
expired versions, unreachable clusters, and cleanup after SIGTERM leaving nothing behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from kibertas_async.kube import ClusterTarget, ClusterUnreachable, KubeApiError, KubeClient, KubeObject, connect
from kibertas_async.kube.resources import CONFIGMAPS, NAMESPACES
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.testing import kubectl
from tests.conftest import read_journal
from tests.reliability.support import synthetic_env

MANAGED = "app.kubernetes.io/managed-by=kibertas-async"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _target(cluster: SandboxCluster) -> ClusterTarget:
    return ClusterTarget(name=cluster.name, context=cluster.context, kubeconfig=str(cluster.kubeconfig))


@pytest.fixture
async def kube_namespace(sandbox_cluster: SandboxCluster) -> Any:
    async with await connect(_target(sandbox_cluster)) as kube:
        created = await kube.create(NAMESPACES, {"metadata": {"generateName": "kube-test-"}})
        name = created["metadata"]["name"]
        yield kube, name
        await kube.delete(NAMESPACES, name)


@pytest.mark.anyio
async def test_wait_for_survives_an_apiserver_restart(
    sandbox_cluster: SandboxCluster, kube_namespace: tuple[KubeClient, str]
) -> None:
    kube, namespace = kube_namespace
    found: list[KubeObject | None] = []
    seen: list[str] = []
    watching = anyio.Event()

    def note(progress: str) -> None:
        seen.append(progress)
        watching.set()

    async def wait() -> None:
        found.append(
            await kube.wait_for(
                CONFIGMAPS,
                "late",
                namespace,
                lambda obj: obj is not None,
                progress=lambda obj: "absent" if obj is None else "present",
                on_progress=note,
            )
        )

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await watching.wait()  # the wait has listed once and is watching
            # Blocking the event loop here is fine (the wait is what we test); the restart must happen
            # in the main thread, where the sandbox's processes are tied to the test process's life.
            sandbox_cluster.restart_apiserver()
            async with await connect(_target(sandbox_cluster)) as other:
                await other.create(CONFIGMAPS, {"metadata": {"name": "late"}}, namespace)
    assert found[0] is not None and found[0]["metadata"]["name"] == "late"
    assert seen[0] == "absent" and seen[-1] == "present"


class StaleListClient(KubeClient):
    """Answers the first list with an old resourceVersion and no items, as after a long disconnect."""

    def __init__(self, api: Any, cluster: str, *, stale_version: str) -> None:
        super().__init__(api, cluster)
        self.stale_version = stale_version
        self.stale_lists = 0

    async def list(self, *args: Any, **kwargs: Any) -> KubeObject:
        listed = await super().list(*args, **kwargs)
        if self.stale_lists == 0:
            self.stale_lists += 1
            return {"items": [], "metadata": {"resourceVersion": self.stale_version}}
        return listed


@pytest.mark.anyio
async def test_wait_for_relists_when_its_version_has_expired(
    sandbox_cluster: SandboxCluster, kube_namespace: tuple[KubeClient, str]
) -> None:
    kube, namespace = kube_namespace
    old_version = (await kube.list(CONFIGMAPS, namespace))["metadata"]["resourceVersion"]
    await kube.create(CONFIGMAPS, {"metadata": {"name": "already-there"}}, namespace)
    # A restarted API server rebuilds its watch cache from etcd's current revision: a version from
    # before that is "too old" and a watch from it gets 410 Expired, as after a long disconnect.
    sandbox_cluster.restart_apiserver()
    async with await connect(_target(sandbox_cluster)) as fresh:
        with pytest.raises(KubeApiError) as expired:
            async for _ in fresh.watch(CONFIGMAPS, namespace, resource_version=old_version):
                pass
        assert expired.value.status == 410
        stale = StaleListClient(fresh._api, sandbox_cluster.name, stale_version=old_version)
        with anyio.fail_after(60):
            obj = await stale.wait_for(CONFIGMAPS, "already-there", namespace, lambda o: o is not None)
    assert obj is not None
    assert stale.stale_lists == 1


@pytest.mark.anyio
async def test_unreachable_cluster_is_reported_not_raised_as_a_crash(sandbox_cluster: SandboxCluster) -> None:
    with sandbox_cluster.unreachable(), pytest.raises(ClusterUnreachable, match=r"did not answer|unreachable"):
        await connect(_target(sandbox_cluster), timeout=3)


def test_unreachable_cluster_errors_its_checks_while_the_other_passes(sandbox: Sandbox, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    sandbox_cluster = sandbox.cluster("sandbox-2")
    with sandbox_cluster.unreachable():
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "kibertas_async",
                "run",
                "kube-roundtrip",
                "--plugin",
                "kibertas_async_synthetic",
                "--clusters",
                "sandbox-1,sandbox-2",
                "--connect-timeout",
                "3s",
                "--report-json",
                str(report),
            ],
            env=synthetic_env(sandbox.kubeconfig),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    assert result.returncode == 1, result.stderr[-2000:]
    results = {r["cluster"]: r for r in json.loads(report.read_text())["results"]}
    assert results["sandbox-1"]["outcome"] == "passed"
    assert results["sandbox-2"]["outcome"] == "error"
    assert results["sandbox-2"]["step"] == "connect to cluster"
    assert "did not answer in 3s" in results["sandbox-2"]["reason"] or "unreachable" in results["sandbox-2"]["reason"]


def test_sigterm_mid_check_leaves_nothing_in_either_cluster(sandbox: Sandbox, tmp_path: Path) -> None:
    journal, report = tmp_path / "journal.jsonl", tmp_path / "report.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kibertas_async",
            "run",
            "kube-forever",
            "--plugin",
            "kibertas_async_synthetic",
            "--clusters",
            "sandbox-1,sandbox-2",
            "--synthetic-journal",
            str(journal),
            "--report-json",
            str(report),
            "--log-format",
            "json",
        ],
        env=synthetic_env(sandbox.kubeconfig),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while len(read_journal(journal)) < 2:
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    namespaces = {e["cluster"]: e["namespace"] for e in read_journal(journal)}
    for cluster, namespace in namespaces.items():
        assert kubectl(sandbox, cluster, "get", "configmap", "held", "-n", namespace).returncode == 0
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 143, err[-2000:]
    for result in json.loads(report.read_text())["results"]:
        assert [item["status"] for item in result["cleanup"]] == ["done", "done"], result["cleanup"]
    for cluster in namespaces:
        left = kubectl(sandbox, cluster, "get", "namespaces", "-l", MANAGED, "-o", "name")
        assert left.stdout.strip() == "", f"{cluster} still has {left.stdout}"
