"""Fault switches for every core process, through ``cluster.process(name)`` and ``cluster.fault(...)``.

Each test shows the fault's effect on the cluster, then that undoing it restores the cluster. They run on
a sandbox of their own (one cluster, kwok only, from ``sandbox_factory``), so pausing etcd or stopping the
controller-manager never disturbs the session's shared sandbox.

A few tests assert that something does *not* happen while a process is down: they watch for
:data:`QUIET_WINDOW` seconds, after showing the same thing happening with the process up, so the window is
what separates "never" from "not yet" (a running scheduler binds a pod here in well under a second).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kibertas_async.sandbox.api import ApiError, SandboxApi
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.testing.plugin import SandboxFactory
from kibertas_async.testing.waiting import eventually

WAIT_LIMIT = 90.0
"""Bound on an effect showing up on a busy machine (not a performance assertion)."""
QUIET_WINDOW = 3.0
"""How long a test watches for something that must not happen while a process is down."""


@pytest.fixture(scope="module")
def faults_sandbox(sandbox_factory: SandboxFactory) -> Iterator[Sandbox]:
    """One cluster, ``faults``, with kwok's nodes and no other add-on."""
    started = sandbox_factory(clusters=["faults"], addons=["kwok"])
    yield started
    started.down()


@pytest.fixture
def cluster(faults_sandbox: Sandbox) -> Iterator[SandboxCluster]:
    """The ``faults`` cluster; every test must leave each of its processes running (checked after it)."""
    target = faults_sandbox.cluster("faults")
    yield target
    for component in ("etcd", *target.processes):
        switch = target.process(component)
        assert switch.is_alive() and not switch.is_paused(), f"a test left {component} stopped or paused"


@pytest.fixture
def namespace(cluster: SandboxCluster) -> Iterator[str]:
    name = f"f-{secrets.token_hex(4)}"
    cluster.api().create("/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    cluster.api().request("DELETE", f"/api/v1/namespaces/{name}")


def wait_for(what: str, read: Callable[[], Any], done: Callable[[Any], object]) -> Any:
    """The kit's :func:`eventually` with this module's limit."""
    return eventually(what, read, done, timeout=WAIT_LIMIT)


def stays(what: str, read: Callable[[], Any], holds: Callable[[Any], bool]) -> None:
    """``holds`` is true of ``read()`` throughout :data:`QUIET_WINDOW`."""
    deadline = time.monotonic() + QUIET_WINDOW
    while time.monotonic() < deadline:
        value = read()
        assert holds(value), f"{what}: no longer so: {value}"
        time.sleep(0.2)


def create_pod(api: SandboxApi, namespace: str, name: str) -> None:
    api.create(
        f"/api/v1/namespaces/{namespace}/pods",
        {"metadata": {"name": name}, "spec": {"containers": [{"name": "main", "image": "registry.invalid/none:1"}]}},
    )


def pod(api: SandboxApi, namespace: str, name: str) -> dict[str, Any]:
    return api.get(f"/api/v1/namespaces/{namespace}/pods/{name}")


def get_or_none(api: SandboxApi, path: str) -> dict[str, Any] | None:
    try:
        return api.get(path)
    except ApiError:
        return None


def node_name(found: dict[str, Any]) -> str | None:
    name: str | None = found["spec"].get("nodeName")
    return name


def phase(found: dict[str, Any]) -> str:
    value: str = found.get("status", {}).get("phase", "")
    return value


def test_scheduler_paused_leaves_a_new_pod_unbound_until_resumed(cluster: SandboxCluster, namespace: str) -> None:
    api = cluster.api()
    create_pod(api, namespace, "before")
    wait_for("a pod bound with the scheduler running", lambda: pod(api, namespace, "before"), node_name)
    scheduler = cluster.process("kube-scheduler")

    scheduler.pause()
    try:
        assert scheduler.is_paused() and scheduler.is_alive()
        create_pod(api, namespace, "while-paused")
        stays("the pod unbound", lambda: pod(api, namespace, "while-paused"), lambda found: not node_name(found))
    finally:
        scheduler.resume()

    bound = wait_for("the pod bound after resume", lambda: pod(api, namespace, "while-paused"), node_name)
    assert str(node_name(bound)).startswith("kwok-node-")


def test_scheduler_restarted_runs_under_a_new_pid_that_the_state_file_records(
    faults_sandbox: Sandbox, cluster: SandboxCluster, namespace: str
) -> None:
    api = cluster.api()
    scheduler = cluster.process("kube-scheduler")
    old_pid = scheduler.pid

    with cluster.fault("kube-scheduler", "stop") as stopped:
        assert not stopped.is_alive()
        create_pod(api, namespace, "while-stopped")
        stays("the pod unbound", lambda: pod(api, namespace, "while-stopped"), lambda found: not node_name(found))

    wait_for("the pod bound after the start", lambda: pod(api, namespace, "while-stopped"), node_name)
    assert scheduler.pid != old_pid
    scheduler.restart()
    recorded = Sandbox.load(faults_sandbox.state_dir)
    assert recorded is not None
    assert recorded.cluster("faults").processes["kube-scheduler"].pid == scheduler.pid
    assert recorded.cluster("faults").processes["kube-scheduler"].is_alive()


def test_controller_manager_stopped_makes_no_replicaset_for_a_deployment_until_started(
    cluster: SandboxCluster, namespace: str
) -> None:
    api = cluster.api()
    labels = {"app": "web"}
    deployment = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "registry.invalid/none:1"}]},
            },
        },
    }

    def replica_sets() -> list[Any]:
        items: list[Any] = api.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets")["items"]
        return items

    with cluster.fault("kube-controller-manager", "stop"):
        api.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment)
        stays("no ReplicaSet", replica_sets, lambda found: found == [])

    created = wait_for("a ReplicaSet after the start", replica_sets, bool)
    assert created[0]["metadata"]["ownerReferences"][0]["name"] == "web"
    wait_for(
        "the Deployment's pod Running",
        lambda: api.get(f"/api/v1/namespaces/{namespace}/pods")["items"],
        lambda pods: [phase(found) for found in pods] == ["Running"],
    )


@pytest.mark.parametrize("fault", ["stop", "pause"])
def test_kwok_down_leaves_a_bound_pod_pending_until_it_is_back(
    cluster: SandboxCluster, namespace: str, fault: str
) -> None:
    api = cluster.api()
    create_pod(api, namespace, "before")
    wait_for("a pod Running with kwok up", lambda: pod(api, namespace, "before"), lambda p: phase(p) == "Running")

    with cluster.fault("kwok", fault):
        create_pod(api, namespace, "while-down")
        bound = wait_for("the pod bound by the scheduler", lambda: pod(api, namespace, "while-down"), node_name)
        assert phase(bound) == "Pending"
        stays(
            "the bound pod Pending, without an IP",
            lambda: pod(api, namespace, "while-down"),
            lambda found: phase(found) == "Pending" and not found["status"].get("podIP"),
        )

    running = wait_for(
        "the pod Running after kwok is back", lambda: pod(api, namespace, "while-down"), lambda p: phase(p) == "Running"
    )
    assert running["status"]["podIP"].startswith("10.244.")


def test_etcd_paused_makes_writes_time_out_while_the_apiserver_still_answers(
    cluster: SandboxCluster, namespace: str
) -> None:
    api = cluster.api()
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"

    with cluster.fault("etcd", "pause") as etcd:
        assert etcd.is_paused()
        assert api.get("/version")["gitVersion"] == "v1.36.3"  # no etcd needed: the API server is up
        with pytest.raises(ApiError, match="timed out") as raised:
            api.request("POST", configmaps, {"metadata": {"name": "during"}}, timeout=3)
        assert raised.value.status == 0

    def write_after() -> bool:
        try:
            api.create(configmaps, {"metadata": {"name": f"after-{secrets.token_hex(3)}"}})
        except ApiError:
            return False  # the API server may take a moment to find etcd again
        return True

    wait_for("a write after etcd resumes", write_after, bool)


def test_etcd_restarted_keeps_every_cluster_s_data(cluster: SandboxCluster, namespace: str) -> None:
    api = cluster.api()
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    before = api.create(path, {"metadata": {"name": "kept"}, "data": {"key": "value"}})
    etcd = cluster.process("etcd")
    old_pid = etcd.pid

    etcd.restart()

    assert etcd.pid != old_pid
    kept = wait_for("the ConfigMap readable again", lambda: get_or_none(api, f"{path}/kept"), bool)
    assert kept["metadata"]["uid"] == before["metadata"]["uid"]
    assert kept["data"] == {"key": "value"}


def test_apiserver_switches_are_the_old_methods_too(cluster: SandboxCluster) -> None:
    apiserver = cluster.process("kube-apiserver")
    assert apiserver.managed is cluster.apiserver
    old_pid = apiserver.pid

    with cluster.fault("kube-apiserver", "unreachable"), pytest.raises(ApiError, match="timed out"):
        cluster.api().get("/version", timeout=1)
    cluster.restart_apiserver()

    assert apiserver.pid != old_pid
    assert cluster.is_ready()


def test_a_fault_block_is_undone_when_the_block_raises(cluster: SandboxCluster) -> None:
    scheduler = cluster.process("kube-scheduler")
    with pytest.raises(RuntimeError, match="inside"), cluster.fault("kube-scheduler", "pause"):
        raise RuntimeError("inside the block")
    assert scheduler.is_alive() and not scheduler.is_paused()


def test_status_shows_a_paused_process(faults_sandbox: Sandbox, cluster: SandboxCluster) -> None:
    with cluster.fault("kube-controller-manager", "pause"):
        lines = faults_sandbox.describe()
    assert any(line.strip().startswith("kube-controller-manager:") and "paused" in line for line in lines), lines


def test_unknown_process_and_fault_are_refused_with_what_there_is(cluster: SandboxCluster) -> None:
    with pytest.raises(KeyError, match="no process 'kube-schedular'; it has etcd, kube-apiserver") as raised:
        cluster.process("kube-schedular")
    assert "kwok" in str(raised.value)
    with (
        pytest.raises(ValueError, match="give one of pause, stop, unreachable"),
        cluster.fault("kube-scheduler", "crash"),
    ):
        pass
    assert cluster.process("kube-scheduler").is_alive()


def test_the_state_file_names_each_switchable_process(faults_sandbox: Sandbox) -> None:
    state = json.loads((faults_sandbox.state_dir / "state.json").read_text())
    assert set(state["clusters"][0]["processes"]) == {
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
    assert state["etcd"]["pid"] == faults_sandbox.cluster("faults").process("etcd").pid
