"""The PostSync Job of ``deploy/`` running every built-in check, in our image, inside a sandbox cluster,
applied as Argo CD creates the hook and, at the end, created by the real Argo CD itself.

One sandbox cluster of its own (module scope) with every default add-on (kwok nodes, external-dns and
BIND9, cert-manager, the autoscaler stand-in and the real Karpenter, the Datadog stand-in and its agent
DaemonSet, moto S3 and the fluentd DaemonSet, the ingress controller stand-in) plus the node agent, whose
node runs the Job's pod with podman. The overlay is applied as Argo CD would create the hook, changed only
where this sandbox differs from a cluster of yours: the pod goes to the agent's node, the ConfigMap holds
the sandbox's (non-secret) settings, the Secret its fake keys, and AWS keys come from the Secret (no IRSA
here). The Chatwork message goes to the Chatwork stand-in, on loopback like everything else.

The last tests run the same documents through Argo CD (the sandbox's ``argocd`` add-on: its application
controller and repo server, built from Argo CD's module): they are committed to the add-on's git
repository, an Application points at them, a sync is asked for as ``argocd app sync`` does, and Argo CD
applies them, creates the PostSync hook Job after the sync, and records the hook's outcome in the
Application's ``status.operationState``.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import yaml

from kibertas_async.cleanup.sweep import discover_resources, find_labelled
from kibertas_async.kube import KubeClient, KubeObject
from kibertas_async.kube.resources import DAEMONSETS, NAMESPACES, NODES, PODS, Resource
from kibertas_async.sandbox.addons.discovery import RUN_CONFIG_NAME, default_addons
from kibertas_async.sandbox.argocd import (
    ARGOCD_NAMESPACE,
    ArgoCdAddon,
    GitRepository,
    application_manifest,
    commit_manifests,
    repository_in,
    sync_operation,
)
from kibertas_async.sandbox.nodeagent import NodeAgentAddon, node_name, pod_log_path
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.testing import api_client
from kibertas_async_chatwork.standin import ChatworkStandin
from tests.sandbox.agent_jobs import (
    JOBS,
    job_conditions,
    job_finished,
    json_events,
    on_the_agent_node,
    render_postsync,
    sandbox_with_agent,
    the_one,
)
from tests.sandbox.test_network import listening_addresses

pytestmark = [pytest.mark.anyio, pytest.mark.sandbox]

CLUSTER = "postsync-1"
NAMESPACE = "kibertas-async"
"""The overlay's namespace (the generated ClusterRoleBinding names its ServiceAccount there)."""
CHATWORK_ROOM = "4242"
BUILT_IN_CHECKS = {"cert-manager", "cluster-autoscaler", "datadog-agent", "fluent", "ingress", "karpenter"}
SECRET_KEYS = {"datadog-api-key": "dd-api-key", "datadog-app-key": "dd-app-key"}
"""Sandbox settings the base Job already reads from its Secret (the reference tool's key names)."""
AWS_KEYS = {"aws-access-key-id": "AWS_ACCESS_KEY_ID", "aws-secret-access-key": "AWS_SECRET_ACCESS_KEY"}
"""Sandbox settings given as AWS's own variables, from the Secret (in EKS: IRSA instead, no keys)."""
# Guards against hanging forever, not performance assertions.
JOB_LIMIT = 300.0
GONE_LIMIT = 120.0
APPLICATIONS = Resource("argoproj.io", "v1alpha1", "applications", "Application")
APPLICATION = "kibertas-async"
OPERATION_ENDED = {"Succeeded", "Failed", "Error"}


@pytest.fixture(scope="module")
def job_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state_dir = tmp_path_factory.mktemp("postsync-sandbox")
    addons = (*default_addons(), NodeAgentAddon(), ArgoCdAddon())
    with sandbox_with_agent(state_dir, CLUSTER, addons) as started:
        yield started


@pytest.fixture
def cluster(job_sandbox: Sandbox) -> SandboxCluster:
    return job_sandbox.cluster(CLUSTER)


@pytest.fixture
async def kube(cluster: SandboxCluster) -> AsyncIterator[KubeClient]:
    async with api_client(cluster) as api:
        yield KubeClient(api, cluster.name)


@pytest.fixture
async def chatwork() -> AsyncIterator[ChatworkStandin]:
    async with ChatworkStandin(rooms={CHATWORK_ROOM}) as standin:
        yield standin


def sandbox_settings(sandbox: Sandbox) -> dict[str, Any]:
    """The option values ``sandbox up`` wrote for this cluster (``<state>/kibertas-async.yaml``)."""
    document = yaml.safe_load((sandbox.state_dir / RUN_CONFIG_NAME).read_text(encoding="utf-8"))
    return dict(document["clusters"][CLUSTER])


def secret_option_names() -> set[str]:
    from kibertas_async.plugins import create_plugin_manager

    return {option.name for option in create_plugin_manager().options if option.secret}


def postsync_documents(
    sandbox: Sandbox, cluster: SandboxCluster, chatwork: ChatworkStandin, *, job_name: str, run_id: str, **extra: Any
) -> list[dict[str, Any]]:
    """The overlay for this sandbox; ``extra`` option values go into the ConfigMap's ``defaults``."""
    documents = render_postsync(sandbox, cluster)
    job = the_one(documents, "Job")
    job["metadata"]["name"] = job_name
    pod = job["spec"]["template"]["spec"]
    on_the_agent_node(pod)
    [container] = pod["containers"]
    container["args"] += ["--run-id", run_id]

    settings = sandbox_settings(sandbox)
    secret_data = {
        "cluster-name": cluster.name,
        "chatwork-room-id": CHATWORK_ROOM,
        "chatwork-api-token": chatwork.token,
    }
    for option, key in SECRET_KEYS.items():
        secret_data[key] = str(settings.pop(option))
    for option, variable in AWS_KEYS.items():
        secret_data[option] = str(settings.pop(option))
        container["env"].append(
            {"name": variable, "valueFrom": {"secretKeyRef": {"name": "kibertas-async", "key": option}}}
        )
    leaked = set(settings) & secret_option_names()
    assert not leaked, f"secret options would go into the ConfigMap: {sorted(leaked)}"
    configmap = the_one(documents, "ConfigMap")
    run_config = {"defaults": {"chatwork-api-url": chatwork.api_url, **extra}, "clusters": {cluster.name: settings}}
    configmap["data"] = {"kibertas-async.yaml": yaml.safe_dump(run_config, sort_keys=True)}
    documents.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "kibertas-async", "namespace": NAMESPACE},
            "stringData": secret_data,
        }
    )
    return documents


async def apply(sandbox: Sandbox, cluster: SandboxCluster, documents: list[dict[str, Any]]) -> None:
    kubectl = [str(sandbox.binaries.kubectl), f"--kubeconfig={cluster.kubeconfig}"]
    await anyio.run_process(
        [*kubectl, "apply", "-f", "-"],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}).encode(),
    )


def rolled_out(daemonset: KubeObject | None) -> bool:
    """``kubectl rollout status``'s test: the current spec observed, and every pod of it updated and ready."""
    if daemonset is None:
        return False
    status = daemonset.get("status", {})
    desired = status.get("desiredNumberScheduled", -1)
    return bool(
        status.get("observedGeneration", 0) >= daemonset["metadata"]["generation"]
        and desired > 0
        and status.get("updatedNumberScheduled") == desired
        and status.get("numberReady") == desired
    )


async def agent_pods(kube: KubeClient, *, running: int) -> None:
    """Wait until exactly ``running`` datadog-agent pods exist and all are Running."""

    def settled(listed: list[KubeObject]) -> bool:
        phases = [pod.get("status", {}).get("phase") for pod in listed]
        return len(phases) == running and all(phase == "Running" for phase in phases)

    with anyio.fail_after(GONE_LIMIT):
        while True:
            listed = (await kube.list(PODS, "datadog", label_selector="app.kubernetes.io/name=datadog-agent"))["items"]
            if settled(listed):
                return
            await anyio.sleep(0.5)


async def ensure_namespace(kube: KubeClient) -> None:
    if await kube.get(NAMESPACES, NAMESPACE) is None:
        await kube.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})


async def wait_job(kube: KubeClient, name: str) -> KubeObject:
    with anyio.fail_after(JOB_LIMIT):
        done = await kube.wait_for(JOBS, name, NAMESPACE, job_finished)
    assert done is not None
    return done


async def job_pod(kube: KubeClient, job_name: str) -> KubeObject:
    [pod] = (await kube.list(PODS, NAMESPACE, label_selector=f"job-name={job_name}"))["items"]
    found: KubeObject = pod
    return found


def container_log(cluster: SandboxCluster, pod: KubeObject) -> str:
    work_dir = cluster.directory / "addons" / NodeAgentAddon.name
    return pod_log_path(work_dir, NAMESPACE, pod["metadata"]["name"], "kibertas-async").read_text()


async def left_by(kube: KubeClient, run_id: str) -> list[str]:
    """Everything carrying the run's labels, on any kind the API server serves, once deletions settle."""
    resources, _problems = await discover_resources(kube)
    deadline = time.monotonic() + GONE_LIMIT
    while True:
        found, _unlisted = await find_labelled(kube, resources, run_id)
        if not found or time.monotonic() > deadline:
            return [item.describe() for item in found]
        await anyio.sleep(1)


async def test_the_stand_in_daemonsets_stay_off_the_agent_node(cluster: SandboxCluster, kube: KubeClient) -> None:
    """They tolerate every taint, like the Helm charts'; podman could not pull their images on the agent's node.
    First in the module: before the node checks have added (and removed) nodes."""
    nodes = [node["metadata"]["name"] for node in (await kube.list(NODES))["items"]]
    assert node_name(cluster.name) in nodes
    for namespace, name in (("datadog", "datadog-agent"), ("logging", "fluentd")):
        daemonset = await kube.get(DAEMONSETS, name, namespace)
        assert daemonset is not None
        pods = (await kube.list(PODS, namespace))["items"]
        assert pods, f"{namespace}/{name} runs no pod at all"
        assert node_name(cluster.name) not in {pod["spec"].get("nodeName") for pod in pods}
        assert daemonset["status"]["desiredNumberScheduled"] == len(nodes) - 1 == len(pods)


async def test_the_postsync_job_passes_every_built_in_check_and_posts_to_chatwork(
    job_sandbox: Sandbox, cluster: SandboxCluster, kube: KubeClient, chatwork: ChatworkStandin
) -> None:
    await ensure_namespace(kube)
    run_id = f"postsync-{secrets.token_hex(3)}"
    documents = postsync_documents(job_sandbox, cluster, chatwork, job_name="kibertas-async-pass", run_id=run_id)
    started = time.monotonic()
    await apply(job_sandbox, cluster, documents)
    done = await wait_job(kube, "kibertas-async-pass")
    elapsed = time.monotonic() - started
    pod = await job_pod(kube, "kibertas-async-pass")
    log = container_log(cluster, pod)

    assert job_conditions(done).get("Complete") == "True", log
    assert pod["spec"]["nodeName"] == node_name(cluster.name)
    assert pod["spec"]["serviceAccountName"] == "kibertas-async"
    events = json_events(log)
    finished = {e["check"]: e["outcome"] for e in events if e.get("event") == "check.finished"}
    assert finished == dict.fromkeys(BUILT_IN_CHECKS, "passed"), log
    assert {e.get("cluster") for e in events if e.get("event") == "check.finished"} == {cluster.name}
    [message] = chatwork.messages
    assert message.room_id == CHATWORK_ROOM
    assert message.body.startswith("[info][title]kibertas-async OK"), message.body
    for check in BUILT_IN_CHECKS:
        assert f"OK {check} (" in message.body, message.body
    assert await left_by(kube, run_id) == []
    print(f"kubectl apply to Job Complete, {len(BUILT_IN_CHECKS)} checks: {elapsed:.1f}s")


async def test_a_broken_add_on_fails_the_job_and_the_message_says_which(
    job_sandbox: Sandbox, cluster: SandboxCluster, kube: KubeClient, chatwork: ChatworkStandin
) -> None:
    await ensure_namespace(kube)
    # The datadog-agent DaemonSet runs no pod any more: no node matches its selector, so no points arrive.
    broken = {"spec": {"template": {"spec": {"nodeSelector": {"kibertas-async.io/no-such-node": "x"}}}}}
    await kube.patch(DAEMONSETS, "datadog-agent", broken, "datadog")
    try:
        await agent_pods(kube, running=0)
        run_id = f"postsync-{secrets.token_hex(3)}"
        documents = postsync_documents(
            job_sandbox, cluster, chatwork, job_name="kibertas-async-broken", run_id=run_id,
            **{"datadog-wait-timeout": "10s"},
        )  # fmt: skip
        await apply(job_sandbox, cluster, documents)
        done = await wait_job(kube, "kibertas-async-broken")
        pod = await job_pod(kube, "kibertas-async-broken")
        log = container_log(cluster, pod)
    finally:
        restore = {"spec": {"template": {"spec": {"nodeSelector": None}}}}
        await kube.patch(DAEMONSETS, "datadog-agent", restore, "datadog")
        with anyio.fail_after(GONE_LIMIT):
            await kube.wait_for(DAEMONSETS, "datadog-agent", "datadog", rolled_out)

    assert job_conditions(done).get("Failed") == "True", log
    state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 1, state
    finished = {e["check"]: e["outcome"] for e in json_events(log) if e.get("event") == "check.finished"}
    assert finished.pop("datadog-agent") == "failed", log
    assert finished == dict.fromkeys(BUILT_IN_CHECKS - {"datadog-agent"}, "passed"), log
    [message] = chatwork.messages
    assert message.body.startswith("[info][title]kibertas-async NG"), message.body
    assert "NG datadog-agent (" in message.body, message.body
    assert "step 'wait for metrics in Datadog'" in message.body, message.body
    assert "stayed empty for 10s" in message.body, message.body
    assert await left_by(kube, run_id) == []


async def test_deleting_the_job_mid_run_still_leaves_nothing_behind(
    job_sandbox: Sandbox, cluster: SandboxCluster, kube: KubeClient, chatwork: ChatworkStandin
) -> None:
    await ensure_namespace(kube)
    run_id = f"postsync-{secrets.token_hex(3)}"
    documents = postsync_documents(job_sandbox, cluster, chatwork, job_name="kibertas-async-deleted", run_id=run_id)
    await apply(job_sandbox, cluster, documents)
    resources, _problems = await discover_resources(kube)

    # Mid-run: the checks have created their first objects.
    with anyio.fail_after(JOB_LIMIT):
        while True:
            found, _unlisted = await find_labelled(kube, resources, run_id)
            if found:
                break
            await anyio.sleep(0.5)
    pod = await job_pod(kube, "kibertas-async-deleted")
    kubectl = [str(job_sandbox.binaries.kubectl), f"--kubeconfig={cluster.kubeconfig}"]
    await anyio.run_process([*kubectl, "delete", "job", "kibertas-async-deleted", "-n", NAMESPACE, "--wait=false"])

    def gone(current: KubeObject | None) -> bool:
        return current is None

    with anyio.fail_after(JOB_LIMIT):
        await kube.wait_for(PODS, pod["metadata"]["name"], NAMESPACE, gone)
    log = container_log(cluster, pod)
    assert await left_by(kube, run_id) == [], log
    events = json_events(log)
    assert any(e.get("event") == "run.interrupted" and e.get("signal") == "SIGTERM" for e in events), log
    cleaned = [e for e in events if e.get("event") == "cleanup.done"]
    assert cleaned, log
    [message] = chatwork.messages
    assert "SIGTERM" in message.body, message.body


def repository(cluster: SandboxCluster) -> GitRepository:
    return repository_in(cluster.directory / "addons" / ArgoCdAddon.name)


async def sync_through_argo_cd(
    kube: KubeClient, cluster: SandboxCluster, documents: list[dict[str, Any]], message: str
) -> tuple[str, KubeObject]:
    """Commit ``documents`` as the repository's ``postsync/`` and have Argo CD sync the Application to that
    commit; return the commit and the Application once the operation has ended."""
    revision = commit_manifests(
        repository(cluster), {"postsync/kibertas-async.yaml": yaml.safe_dump_all(documents, sort_keys=True)}, message
    )
    if await kube.get(APPLICATIONS, APPLICATION, ARGOCD_NAMESPACE) is None:
        manifest = application_manifest(APPLICATION, repository(cluster), path="postsync", namespace=NAMESPACE)
        await kube.create(APPLICATIONS, manifest, ARGOCD_NAMESPACE)
    await kube.patch(APPLICATIONS, APPLICATION, sync_operation(revision), ARGOCD_NAMESPACE)

    def ended_at_revision(app: KubeObject | None) -> bool:
        state = (app or {}).get("status", {}).get("operationState") or {}
        synced_to = (state.get("operation") or {}).get("sync", {}).get("revision")
        return synced_to == revision and state.get("phase") in OPERATION_ENDED

    with anyio.fail_after(JOB_LIMIT):
        app = await kube.wait_for(APPLICATIONS, APPLICATION, ARGOCD_NAMESPACE, ended_at_revision)
    assert app is not None
    return revision, app


def hook_results(app: KubeObject) -> list[dict[str, Any]]:
    """The operation's hook resources (``syncResult.resources`` with a ``hookType``)."""
    resources = app["status"]["operationState"].get("syncResult", {}).get("resources") or []
    return [resource for resource in resources if resource.get("hookType")]


def agent_logs(cluster: SandboxCluster, job_name: str) -> str:
    """The container output of the Job's pods on the agent's node (the pods may be gone: Argo CD deletes a
    hook Job that succeeded)."""
    logs = cluster.directory / "addons" / NodeAgentAddon.name / "logs"
    return "".join(path.read_text() for path in sorted(logs.glob(f"{NAMESPACE}_{job_name}-?????_kibertas-async.log")))


def test_argo_cd_and_its_redis_and_git_daemon_listen_on_loopback_only(cluster: SandboxCluster) -> None:
    """Argo CD's controller binds its metrics server to 0.0.0.0 unless built from our patched copy."""
    names = ("redis", "git-daemon", "argocd-repo-server", "argocd-application-controller")
    pids = [pid for name in names if (pid := cluster.processes[name].pid) is not None]
    assert len(pids) == len(names)
    addresses = [address for found in listening_addresses(pids).values() for address in found]
    assert len(addresses) >= 5, addresses  # redis, git, the repo server and its metrics, the controller's metrics
    for address in addresses:
        ip = ipaddress.ip_address(address.rpartition(":")[0])
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        assert (mapped or ip).is_loopback, f"an Argo CD process listens on {address}"


async def test_argo_cd_syncs_the_overlay_and_its_postsync_hook_job_passes(
    job_sandbox: Sandbox, cluster: SandboxCluster, kube: KubeClient, chatwork: ChatworkStandin
) -> None:
    """The Job Argo CD creates runs on the agent's node, passes every check, posts OK, and Argo CD records
    the hook Succeeded and then deletes the Job (its ``HookSucceeded`` policy)."""
    run_id = f"argocd-{secrets.token_hex(3)}"
    job_name = "kibertas-async-argocd"
    documents = postsync_documents(job_sandbox, cluster, chatwork, job_name=job_name, run_id=run_id)
    assert the_one(documents, "Job")["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PostSync"

    revision, app = await sync_through_argo_cd(kube, cluster, documents, "the PostSync overlay")
    log = agent_logs(cluster, job_name)
    state = app["status"]["operationState"]

    assert state["phase"] == "Succeeded", (state, log)
    assert state["syncResult"]["revision"] == revision
    [hook] = hook_results(app)
    assert (hook["kind"], hook["name"], hook["hookType"], hook["hookPhase"]) == (
        "Job",
        job_name,
        "PostSync",
        "Succeeded",
    )
    events = json_events(log)
    finished = {e["check"]: e["outcome"] for e in events if e.get("event") == "check.finished"}
    assert finished == dict.fromkeys(BUILT_IN_CHECKS, "passed"), log
    [message] = chatwork.messages
    assert message.body.startswith("[info][title]kibertas-async OK"), message.body

    def gone(job: KubeObject | None) -> bool:
        return job is None

    with anyio.fail_after(GONE_LIMIT):
        await kube.wait_for(JOBS, job_name, NAMESPACE, gone)
    assert await left_by(kube, run_id) == []


async def test_argo_cd_marks_the_sync_failed_when_the_hook_job_finds_a_broken_add_on(
    job_sandbox: Sandbox, cluster: SandboxCluster, kube: KubeClient, chatwork: ChatworkStandin
) -> None:
    """The same, with the datadog-agent DaemonSet running no pod: the hook Job fails, so the sync does, and
    the failed Job stays for its logs."""
    broken = {"spec": {"template": {"spec": {"nodeSelector": {"kibertas-async.io/no-such-node": "x"}}}}}
    await kube.patch(DAEMONSETS, "datadog-agent", broken, "datadog")
    job_name = "kibertas-async-argocd-broken"
    run_id = f"argocd-{secrets.token_hex(3)}"
    try:
        await agent_pods(kube, running=0)
        documents = postsync_documents(
            job_sandbox, cluster, chatwork, job_name=job_name, run_id=run_id, **{"datadog-wait-timeout": "10s"}
        )
        _revision, app = await sync_through_argo_cd(kube, cluster, documents, "datadog-agent broken")
    finally:
        restore = {"spec": {"template": {"spec": {"nodeSelector": None}}}}
        await kube.patch(DAEMONSETS, "datadog-agent", restore, "datadog")
        with anyio.fail_after(GONE_LIMIT):
            await kube.wait_for(DAEMONSETS, "datadog-agent", "datadog", rolled_out)
    log = agent_logs(cluster, job_name)
    state = app["status"]["operationState"]

    assert state["phase"] == "Failed", (state, log)
    [hook] = hook_results(app)
    assert (hook["kind"], hook["name"], hook["hookPhase"]) == ("Job", job_name, "Failed"), hook
    job = await kube.get(JOBS, job_name, NAMESPACE)
    assert job is not None and job_conditions(job).get("Failed") == "True"
    finished = {e["check"]: e["outcome"] for e in json_events(log) if e.get("event") == "check.finished"}
    assert finished.pop("datadog-agent") == "failed", log
    [message] = chatwork.messages
    assert "NG datadog-agent (" in message.body, message.body
    assert await left_by(kube, run_id) == []
