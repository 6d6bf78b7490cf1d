"""The node agent add-on: a sandbox node whose pods really run, in our image, with podman.

One sandbox cluster of its own (module scope) with kwok and the agent; the image is
``localhost/kibertas-async:dev`` built by ``scripts/image --check``. Where podman cannot run, the tests
skip with the reason, and fail with it when ``$CI`` is true.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import kibertas_async
from kibertas_async.kube import KubeClient, KubeObject
from kibertas_async.kube.resources import CONFIGMAPS, NAMESPACES, NODES, PODS, SECRETS, SERVICEACCOUNTS
from kibertas_async.sandbox.addons.kwok import KWOK_NODE_ANNOTATION, KwokAddon, NodeShape
from kibertas_async.sandbox.nodeagent import NODE_AGENT_LABEL, NODE_AGENT_TAINT, NodeAgentAddon, node_name, pod_log_path
from kibertas_async.sandbox.nodeagent.agent import LEASES, expand_references
from kibertas_async.sandbox.nodeagent.podman import AGENT_DIR_LABEL, container_name
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.testing import api_client
from tests.sandbox.agent_jobs import (
    IMAGE,
    JOBS,
    REPO,
    job_finished,
    on_the_agent_node,
    render_postsync,
    sandbox_with_agent,
    the_one,
)

pytestmark = [pytest.mark.anyio, pytest.mark.sandbox]

CLUSTER = "agent-1"
# A guard against hanging forever, not a performance assertion.
WAIT_LIMIT = 120.0


@pytest.fixture(scope="module")
def agent_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One cluster with a single kwok node and the node agent, the image built beforehand."""
    state_dir = tmp_path_factory.mktemp("nodeagent-sandbox")
    kwok = KwokAddon(nodes=[NodeShape("t3.small", "ap-northeast-1a", "SPOT", cpu="2", memory="2Gi")])
    with sandbox_with_agent(state_dir, CLUSTER, (kwok, NodeAgentAddon())) as started:
        yield started


@pytest.fixture
def cluster(agent_sandbox: Sandbox) -> SandboxCluster:
    return agent_sandbox.cluster(CLUSTER)


@pytest.fixture
def work_dir(cluster: SandboxCluster) -> Path:
    return cluster.directory / "addons" / NodeAgentAddon.name


@pytest.fixture
async def kube(cluster: SandboxCluster) -> AsyncIterator[KubeClient]:
    async with api_client(cluster) as api:
        yield KubeClient(api, cluster.name)


@pytest.fixture
async def namespace(kube: KubeClient) -> AsyncIterator[str]:
    """A fresh namespace whose ``default`` ServiceAccount exists; deleted (not awaited) afterwards."""
    name = f"agent-{secrets.token_hex(4)}"
    await kube.create(NAMESPACES, {"metadata": {"name": name}})
    with anyio.fail_after(WAIT_LIMIT):
        await kube.wait_for(SERVICEACCOUNTS, "default", name, lambda account: account is not None)
    yield name
    await kube.delete(NAMESPACES, name)


def agent_pod_spec(cluster: SandboxCluster, container: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A pod spec for the agent's node: the toleration, and the node by name (``nodeName``)."""
    return {
        "nodeName": node_name(cluster.name),
        "tolerations": [NODE_AGENT_TAINT],
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": IMAGE, **container}],
        **extra,
    }


async def wait_for_phase(kube: KubeClient, namespace: str, name: str, *phases: str) -> KubeObject:
    def reached(pod: KubeObject | None) -> bool:
        return pod is not None and pod.get("status", {}).get("phase") in phases

    with anyio.fail_after(WAIT_LIMIT):
        pod = await kube.wait_for(PODS, name, namespace, reached)
    assert pod is not None
    return pod


def terminated(pod: KubeObject) -> KubeObject:
    state: KubeObject = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    return state


async def test_the_agent_node_is_ready_tainted_not_kwoks_and_renews_its_lease(
    cluster: SandboxCluster, kube: KubeClient
) -> None:
    node = await kube.get(NODES, node_name(cluster.name))
    assert node is not None
    assert node["metadata"]["labels"][NODE_AGENT_LABEL] == "podman"
    assert KWOK_NODE_ANNOTATION not in (node["metadata"].get("annotations") or {})
    taints = [(t["key"], t.get("value"), t["effect"]) for t in node["spec"]["taints"]]
    assert taints == [(NODE_AGENT_LABEL, "podman", "NoSchedule")]
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    lease = await kube.get(LEASES, node_name(cluster.name), "kube-node-lease")
    assert lease is not None and lease["spec"]["holderIdentity"] == node_name(cluster.name)
    first = lease["spec"]["renewTime"]
    with anyio.fail_after(WAIT_LIMIT):
        await kube.wait_for(
            LEASES,
            node_name(cluster.name),
            "kube-node-lease",
            lambda now: now is not None and now["spec"]["renewTime"] != first,
        )


async def test_pods_end_succeeded_and_failed_with_their_exit_codes(
    cluster: SandboxCluster, kube: KubeClient, namespace: str, work_dir: Path
) -> None:
    started = time.monotonic()
    await kube.create(
        PODS, {"metadata": {"name": "version"}, "spec": agent_pod_spec(cluster, {"args": ["--version"]})}, namespace
    )
    missing_check = agent_pod_spec(cluster, {"args": ["run", "nonexistent-check"]})
    await kube.create(PODS, {"metadata": {"name": "missing-check"}, "spec": missing_check}, namespace)

    succeeded = await wait_for_phase(kube, namespace, "version", "Succeeded", "Failed")
    assert succeeded["status"]["phase"] == "Succeeded", succeeded["status"]
    assert terminated(succeeded)["exitCode"] == 0
    assert terminated(succeeded)["reason"] == "Completed"
    assert "startedAt" in terminated(succeeded)
    log = pod_log_path(work_dir, namespace, "version", "main").read_text()
    assert f"kibertas-async {kibertas_async.__version__}" in log

    failed = await wait_for_phase(kube, namespace, "missing-check", "Succeeded", "Failed")
    assert failed["status"]["phase"] == "Failed", failed["status"]
    assert terminated(failed)["exitCode"] == 2
    assert terminated(failed)["reason"] == "Error"
    print(f"two pods to their end: {time.monotonic() - started:.1f}s")


async def test_a_job_whose_pod_lists_the_checks_completes(
    cluster: SandboxCluster, kube: KubeClient, namespace: str, work_dir: Path
) -> None:
    started = time.monotonic()
    # Scheduled by the real scheduler (nodeSelector + toleration), read-only root with /tmp an emptyDir.
    pod_spec = {
        "nodeSelector": {NODE_AGENT_LABEL: "podman"},
        "tolerations": [NODE_AGENT_TAINT],
        "restartPolicy": "Never",
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "containers": [
            {
                "name": "kibertas-async",
                "image": IMAGE,
                "args": ["list"],
                "securityContext": {"readOnlyRootFilesystem": True, "runAsUser": 65532, "runAsGroup": 65532},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
    }
    job = {"metadata": {"name": "list"}, "spec": {"backoffLimit": 0, "template": {"spec": pod_spec}}}
    await kube.create(JOBS, job, namespace)

    with anyio.fail_after(WAIT_LIMIT):
        done = await kube.wait_for(JOBS, "list", namespace, job_finished)
    assert done is not None
    conditions = {c["type"]: c["status"] for c in done["status"]["conditions"]}
    assert conditions.get("Complete") == "True", done["status"]
    pods = (await kube.list(PODS, namespace, label_selector="job-name=list"))["items"]
    assert [pod["spec"]["nodeName"] for pod in pods] == [node_name(cluster.name)]
    assert "ingress" in pod_log_path(work_dir, namespace, pods[0]["metadata"]["name"], "kibertas-async").read_text()
    print(f"Job created to Complete: {time.monotonic() - started:.1f}s")


async def test_secret_values_and_the_service_account_reach_the_container(
    cluster: SandboxCluster, kube: KubeClient, namespace: str, work_dir: Path
) -> None:
    value = secrets.token_hex(8)
    secret = {"metadata": {"name": "creds"}, "stringData": {"api-key": value}}
    await kube.create(SECRETS, secret, namespace)
    script = (
        "import os, pathlib; d = pathlib.Path('/var/run/secrets/kubernetes.io/serviceaccount');"
        "print('key=' + os.environ['API_KEY']); print('optional=' + os.environ.get('MAYBE', '<unset>'));"
        "print('namespace=' + (d / 'namespace').read_text());"
        "print('token=' + str(len((d / 'token').read_text()) > 100));"
        "print('ca=' + str('BEGIN CERTIFICATE' in (d / 'ca.crt').read_text()));"
        "print('service=' + os.environ['KUBERNETES_SERVICE_HOST'] + ':' + os.environ['KUBERNETES_SERVICE_PORT'])"
    )
    env = [
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}},
        {"name": "MAYBE", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}}},
    ]
    spec = agent_pod_spec(cluster, {"command": ["python3", "-c", script], "env": env})
    await kube.create(PODS, {"metadata": {"name": "env"}, "spec": spec}, namespace)

    pod = await wait_for_phase(kube, namespace, "env", "Succeeded", "Failed")
    log = pod_log_path(work_dir, namespace, "env", "main").read_text()
    assert pod["status"]["phase"] == "Succeeded", log
    assert f"key={value}" in log
    assert "optional=<unset>" in log
    assert f"namespace={namespace}" in log
    assert "token=True" in log and "ca=True" in log
    assert f"service=127.0.0.1:{cluster.port}" in log


async def test_deleting_a_running_pod_stops_its_container_within_the_grace_period(
    cluster: SandboxCluster, kube: KubeClient, namespace: str, work_dir: Path
) -> None:
    grace = 20
    # It says so when SIGTERM arrives, and exits 0: the log proves the signal, the time proves it was not SIGKILL.
    script = (
        "import signal, sys, time\n"
        "def stop(*_):\n    print('got SIGTERM', flush=True)\n    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\nprint('sleeping', flush=True)\ntime.sleep(300)\n"
    )
    sleeper = {"command": ["python3", "-c", script]}
    spec = agent_pod_spec(cluster, sleeper, terminationGracePeriodSeconds=grace)
    created = await kube.create(PODS, {"metadata": {"name": "sleeper"}, "spec": spec}, namespace)
    pod = await wait_for_phase(kube, namespace, "sleeper", "Running")
    assert "running" in pod["status"]["containerStatuses"][0]["state"]
    name = container_name(created["metadata"]["uid"], "main")
    assert (await anyio.run_process(["podman", "container", "exists", name], check=False)).returncode == 0

    started = time.monotonic()
    await kube.delete(PODS, "sleeper", namespace)
    seen: list[KubeObject] = []

    def gone(current: KubeObject | None) -> bool:
        if current is not None:
            seen.append(current)
        return current is None

    with anyio.fail_after(WAIT_LIMIT):
        await kube.wait_for(PODS, "sleeper", namespace, gone)
    elapsed = time.monotonic() - started
    # Its last status, reported between the stop and the deletion: the exit code of the SIGTERM handler.
    last = seen[-1]["status"]
    assert last["phase"] == "Succeeded", last
    assert last["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0, last
    assert elapsed < grace, f"the pod took {elapsed:.1f}s to go: SIGTERM did not stop its container"
    assert (await anyio.run_process(["podman", "container", "exists", name], check=False)).returncode == 1
    log = pod_log_path(work_dir, namespace, "sleeper", "main").read_text()
    assert "sleeping" in log and "got SIGTERM" in log, log
    print(f"delete to gone: {elapsed:.1f}s")


BUILT_IN_CHECKS = ("cert-manager", "cluster-autoscaler", "datadog-agent", "fluent", "ingress", "karpenter")
"""They need add-ons this module's sandbox (kwok only, to stay small) does not run, so the PostSync Job
below leaves them out; ``test_postsync_job.py`` runs them all, on a sandbox with every add-on."""
EXAMPLE_PLUGIN = REPO / "docs" / "example-plugin"


def postsync_manifests(agent_sandbox: Sandbox, cluster: SandboxCluster) -> list[dict[str, Any]]:
    """``deploy/overlays/argocd-postsync`` rendered by kubectl, patched to the agent's node and to run
    ``run --all`` without the built-in checks and with the example plugin (mounted from the checkout),
    plus the example check's own rules from ``kibertas-async rbac``, added to the same ServiceAccount."""
    documents = render_postsync(agent_sandbox, cluster)
    job = the_one(documents, "Job")
    pod = job["spec"]["template"]["spec"]
    on_the_agent_node(pod)
    pod["volumes"].append({"name": "example-plugin", "hostPath": {"path": str(EXAMPLE_PLUGIN)}})
    [container] = pod["containers"]
    container["volumeMounts"].append({"name": "example-plugin", "mountPath": "/opt/example-plugin", "readOnly": True})
    container["env"].append({"name": "PYTHONPATH", "value": "/opt/example-plugin"})
    arguments = container["args"]
    assert arguments[:2] == ["run", "--all"], arguments
    arguments[2:2] = ["--exclude", ",".join(BUILT_IN_CHECKS), "--plugin", "kibertas_async_configmap"]
    namespace = str(job["metadata"]["namespace"])
    example_rbac = subprocess.run(
        [str(REPO / ".venv" / "bin" / "kibertas-async"), "rbac", "configmap-roundtrip", "--plugin",
         "kibertas_async_configmap", "--namespace", namespace, "--format", "json"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(EXAMPLE_PLUGIN)},
    )  # fmt: skip
    for document in _documents(json.loads(example_rbac.stdout)):
        if document["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
            document["metadata"]["name"] += "-example"
            if "roleRef" in document:
                document["roleRef"]["name"] += "-example"
            documents.append(document)
    return documents


def _documents(decoded: Any) -> list[dict[str, Any]]:
    if isinstance(decoded, dict) and decoded.get("kind") == "List":
        return list(decoded["items"])
    return list(decoded) if isinstance(decoded, list) else [decoded]


async def test_the_argocd_postsync_job_runs_in_our_image_as_its_service_account(
    agent_sandbox: Sandbox, cluster: SandboxCluster, kube: KubeClient, work_dir: Path
) -> None:
    documents = postsync_manifests(agent_sandbox, cluster)
    [job] = [document for document in documents if document["kind"] == "Job"]
    namespace = str(job["metadata"]["namespace"])
    await kube.create(NAMESPACES, {"metadata": {"name": namespace}})
    secret = {"metadata": {"name": "kibertas-async"}, "stringData": {"cluster-name": cluster.name}}
    await kube.create(SECRETS, secret, namespace)
    started = time.monotonic()
    kubectl = [str(agent_sandbox.binaries.kubectl), f"--kubeconfig={cluster.kubeconfig}"]
    await anyio.run_process(
        [*kubectl, "apply", "-f", "-"],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}).encode(),
    )

    with anyio.fail_after(WAIT_LIMIT):
        done = await kube.wait_for(JOBS, job["metadata"]["name"], namespace, job_finished)
    elapsed = time.monotonic() - started
    assert done is not None
    pods = (await kube.list(PODS, namespace, label_selector=f"job-name={job['metadata']['name']}"))["items"]
    [pod] = pods
    log = pod_log_path(work_dir, namespace, pod["metadata"]["name"], "kibertas-async").read_text()
    conditions = {c["type"]: c["status"] for c in done["status"]["conditions"]}
    assert conditions.get("Complete") == "True", log
    assert pod["spec"]["serviceAccountName"] == "kibertas-async"
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert events, log
    finished_checks = {e.get("check"): e.get("outcome") for e in events if e.get("event") == "check.finished"}
    assert finished_checks == {"configmap-roundtrip": "passed"}, log
    assert "OK: 1 passed" in log, log
    print(f"kubectl apply to Job Complete: {elapsed:.1f}s")


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(S3)", "s3://bucket/prefix/"),
        ("--source=$(S3)x", "--source=s3://bucket/prefix/x"),
        ("$(S3)$(INDEX)", "s3://bucket/prefix/2"),
        ("$(UNDEFINED)", "$(UNDEFINED)"),
        ("$$(S3)", "$(S3)"),
        ("$$$(INDEX)", "$2"),
        ("cost $5 $", "cost $5 $"),
        ("$(S3", "$(S3"),
        ("$()", "$()"),
        ("", ""),
    ],
)
def test_var_references_expand_as_a_kubelet_expands_them(text: str, expanded: str) -> None:
    assert expand_references(text, {"S3": "s3://bucket/prefix/", "INDEX": "2"}) == expanded


async def test_var_references_in_args_and_env_reach_the_container_expanded(
    cluster: SandboxCluster, kube: KubeClient, namespace: str, work_dir: Path
) -> None:
    """The merge Job's ``args: [..., $(KIBERTAS_ASYNC_REPORT_S3), ...]`` need this; a value from a
    ConfigMap, a later ``env`` value built from an earlier one, ``$$`` and an undefined name."""
    configmap = {"metadata": {"name": "where"}, "data": {"prefix": "s3://reports/run/"}}
    await kube.create(CONFIGMAPS, configmap, namespace)
    env = [
        {"name": "PREFIX", "valueFrom": {"configMapKeyRef": {"name": "where", "key": "prefix"}}},
        {"name": "REPORT", "value": "$(PREFIX)shard-1.json"},
    ]
    script = "import os, sys; print('args=' + '|'.join(sys.argv[1:])); print('env=' + os.environ['REPORT'])"
    container = {
        "command": ["python3", "-c", script],
        "args": ["$(PREFIX)", "$(REPORT)", "$$(PREFIX)", "$(UNDEFINED)"],
        "env": env,
    }
    spec = agent_pod_spec(cluster, container)
    await kube.create(PODS, {"metadata": {"name": "expand"}, "spec": spec}, namespace)

    pod = await wait_for_phase(kube, namespace, "expand", "Succeeded", "Failed")
    log = pod_log_path(work_dir, namespace, "expand", "main").read_text()
    assert pod["status"]["phase"] == "Succeeded", log
    assert "args=s3://reports/run/|s3://reports/run/shard-1.json|$(PREFIX)|$(UNDEFINED)" in log, log
    assert "env=s3://reports/run/shard-1.json" in log, log


async def test_sandbox_down_stops_and_removes_every_container_of_the_agent(
    agent_sandbox: Sandbox, cluster: SandboxCluster, kube: KubeClient, work_dir: Path
) -> None:
    # Last in this module: it takes the module's sandbox down (the fixture's own down then finds nothing).
    name = f"agent-{secrets.token_hex(4)}"
    await kube.create(NAMESPACES, {"metadata": {"name": name}})
    with anyio.fail_after(WAIT_LIMIT):
        await kube.wait_for(SERVICEACCOUNTS, "default", name, lambda account: account is not None)
    sleeper = {"command": ["python3", "-c", "import time; time.sleep(300)"]}
    await kube.create(PODS, {"metadata": {"name": "left-running"}, "spec": agent_pod_spec(cluster, sleeper)}, name)
    await wait_for_phase(kube, name, "left-running", "Running")
    agent_log = (work_dir / "node-agent.log").read_text()
    assert "Traceback" not in agent_log and " ERROR " not in agent_log, agent_log

    started = time.monotonic()
    agent_sandbox.down()
    elapsed = time.monotonic() - started
    listed = await anyio.run_process(
        ["podman", "ps", "--all", "--quiet", "--filter", f"label={AGENT_DIR_LABEL}={work_dir}"], check=False
    )
    assert listed.stdout.split() == []
    print(f"sandbox down with a running container: {elapsed:.1f}s")
