"""``deploy/overlays/sharded`` run as Kubernetes runs it: an Indexed Job of 3 shard pods and the merge Job.

Two sandbox clusters (module scope), each with kwok, the sandbox autoscaler, the fluent add-on (moto S3,
the fluentd DaemonSet and its log shipper) and the node agent; the checks are ``cluster-autoscaler`` and
``fluent``, whose add-ons these are: 2 clusters x 2 checks, cut into 3 shards (one of them holds a cell of
each cluster). The overlay is applied to the first cluster, changed only where this sandbox differs from a
cluster of yours: both Jobs' pods go to the agent's node (podman, ``--network host``, so both clusters'
loopback API servers are reachable from there), the shards run the two checks instead of ``--all`` (the
others' add-ons are not started), the ConfigMaps hold the sandbox's settings, the report prefix and the
clusters, the Secrets the fake keys and a kubeconfig with one context per cluster, AWS keys and moto's
endpoint come as the AWS SDK's variables (no IRSA here), the merge is told the Chatwork stand-in's URL and
also writes its JSON report to a host directory, for the test to read. The reports go to the first
cluster's moto. The Job controller gives each pod its ``JOB_COMPLETION_INDEX``; nothing else does.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from kibertas_async.kube import KubeClient, KubeObject
from kibertas_async.kube.resources import NAMESPACES, PODS
from kibertas_async.sandbox.addons.discovery import RUN_CONFIG_NAME, select_addons
from kibertas_async.sandbox.nodeagent import NodeAgentAddon, node_name, pod_log_path
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import api_client
from kibertas_async.testing.runner import find_leftovers
from kibertas_async_chatwork.standin import ChatworkStandin, PostedMessage
from tests.sandbox.agent_jobs import (
    JOBS,
    job_conditions,
    job_finished,
    json_events,
    on_the_agent_node,
    render_sharded,
    sandbox_with_agents,
    the_one,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(1200)]

CLUSTERS = ("sharded-1", "sharded-2")
HOME = CLUSTERS[0]
"""The cluster the Jobs run on; its moto holds the reports."""
ADDONS = ("kwok", "sandbox-autoscaler", "fluent")
CHECKS = ("cluster-autoscaler", "fluent")
SHARDS = 3
NAMESPACE = "kibertas-async"
"""The overlay's namespace (the generated ClusterRoleBinding names its ServiceAccount there)."""
SHARDS_JOB = "kibertas-async"
MERGE_JOB = "kibertas-async-merge"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
CHATWORK_ROOM = "4343"
REPORT_BUCKET = "kibertas-async-reports"
MERGED_REPORT_DIR = "/merged"
AWS_KEYS = {"aws-access-key-id": "AWS_ACCESS_KEY_ID", "aws-secret-access-key": "AWS_SECRET_ACCESS_KEY"}
"""Sandbox settings given as AWS's own variables, from the Secret (in EKS: IRSA instead, no keys)."""
# Guards against hanging forever, not performance assertions.
JOB_LIMIT = 600.0
GONE_LIMIT = 120.0


@dataclass(frozen=True)
class ShardedRun:
    """What the cluster, moto and the Chatwork stand-in hold once both Jobs have finished."""

    run_id: str
    """The shards' Job's uid, which the overlay makes every pod's run id."""
    report_prefix: str
    shards_job: KubeObject
    merge_job: KubeObject
    shard_pods: list[KubeObject]
    shard_logs: dict[str, str]
    """By pod name."""
    merge_pod: KubeObject
    merge_log: str
    report_keys: list[str]
    """Every key under the run's prefix in the report bucket."""
    shard_reports: dict[str, dict[str, Any]]
    """The shards' reports as stored in S3, by key."""
    merged_report: dict[str, Any]
    messages: list[PostedMessage]
    left: list[str]


@pytest.fixture(scope="module")
def sharded_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state_dir = tmp_path_factory.mktemp("sharded-sandbox")
    with sandbox_with_agents(state_dir, CLUSTERS, (*select_addons(ADDONS), NodeAgentAddon())) as started:
        yield started


@pytest.fixture(scope="module")
def sharded_run(sharded_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> ShardedRun:
    """The overlay applied once, both Jobs waited for, and everything the tests look at collected."""
    merged_dir = tmp_path_factory.mktemp("merged-report")
    merged_dir.chmod(0o777)  # the merge runs as 65532
    bucket = report_bucket(cluster_settings(sharded_sandbox)[HOME])
    return anyio.run(run_the_overlay, sharded_sandbox, bucket, merged_dir)


def cluster_settings(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """The option values ``sandbox up`` wrote for each cluster (``<state>/kibertas-async.yaml``)."""
    document = yaml.safe_load((sandbox.state_dir / RUN_CONFIG_NAME).read_text(encoding="utf-8"))
    return {name: dict(document["clusters"][name]) for name in CLUSTERS}


def secret_option_names() -> set[str]:
    from kibertas_async.plugins import create_plugin_manager

    return {option.name for option in create_plugin_manager().options if option.secret}


def pod_kubeconfig(sandbox: Sandbox) -> str:
    """The sandbox's kubeconfig as a user's would be: one context per cluster, token users, no sandbox
    settings extension (the settings reach the pods through the ConfigMap, as in a real cluster)."""
    kubeconfig = yaml.safe_load(sandbox.kubeconfig.read_text(encoding="utf-8"))
    for context in kubeconfig["contexts"]:
        context["context"].pop("extensions", None)
    assert {context["name"] for context in kubeconfig["contexts"]} == set(CLUSTERS)
    return yaml.safe_dump(kubeconfig)


def add_env(container: dict[str, Any], **values: str) -> None:
    container.setdefault("env", []).extend({"name": name, "value": value} for name, value in values.items())


def aws_keys_from_the_secret(container: dict[str, Any]) -> None:
    container["env"].extend(
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": "kibertas-async", "key": option}}}
        for option, variable in AWS_KEYS.items()
    )


def sharded_documents(
    sandbox: Sandbox, chatwork: ChatworkStandin, *, report_s3: str, merged_dir: Path
) -> list[dict[str, Any]]:
    """The overlay for this sandbox (see the module docstring for each change)."""
    documents = render_sharded(sandbox, sandbox.cluster(HOME))
    settings = cluster_settings(sandbox)
    aws = {option: {str(settings[name].pop(option)) for name in CLUSTERS} for option in AWS_KEYS}
    assert all(len(values) == 1 for values in aws.values()), f"the clusters' moto keys differ: {aws}"
    leaked = {option for values in settings.values() for option in values} & secret_option_names()
    assert not leaked, f"secret options would go into the ConfigMap: {sorted(leaked)}"
    s3_environment = {"AWS_ENDPOINT_URL_S3": str(settings[HOME]["aws-endpoint-url"]), "AWS_REGION": "us-east-1"}

    shards = job_named(documents, SHARDS_JOB)
    shards["spec"]["completions"] = shards["spec"]["parallelism"] = SHARDS
    pod = shards["spec"]["template"]["spec"]
    on_the_agent_node(pod)
    [container] = pod["containers"]
    [count] = [variable for variable in container["env"] if variable["name"] == "KIBERTAS_ASYNC_SHARDS"]
    count["value"] = str(SHARDS)
    args = container["args"]
    args[args.index("--all") : args.index("--all") + 1] = list(CHECKS)
    aws_keys_from_the_secret(container)
    add_env(container, **s3_environment)

    merge = job_named(documents, MERGE_JOB)
    pod = merge["spec"]["template"]["spec"]
    on_the_agent_node(pod)
    [container] = pod["containers"]
    container["args"] += ["--report-json", f"{MERGED_REPORT_DIR}/merged.json"]
    aws_keys_from_the_secret(container)
    add_env(container, CHATWORK_API_URL=chatwork.api_url, **s3_environment)
    container["volumeMounts"].append({"name": "merged", "mountPath": MERGED_REPORT_DIR})
    pod["volumes"].append({"name": "merged", "hostPath": {"path": str(merged_dir), "type": "Directory"}})

    # kustomize names generated ConfigMaps <name>-<content hash>, and the Jobs refer to them by that name.
    configmaps = {d["metadata"]["name"].rpartition("-")[0]: d for d in documents if d["kind"] == "ConfigMap"}
    assert set(configmaps) == {"kibertas-async-config", "kibertas-async-sharding"}, sorted(configmaps)
    # The shards get the stand-in's URL too: a shard that sent a message would be seen.
    run_config = {"defaults": {"chatwork-api-url": chatwork.api_url}, "clusters": settings}
    configmaps["kibertas-async-config"]["data"] = {"kibertas-async.yaml": yaml.safe_dump(run_config, sort_keys=True)}
    configmaps["kibertas-async-sharding"]["data"] = {"report-s3": report_s3, "clusters": ",".join(CLUSTERS)}
    secret_data = {
        "chatwork-room-id": CHATWORK_ROOM,
        "chatwork-api-token": chatwork.token,
        **{option: values.pop() for option, values in aws.items()},
    }
    kubeconfig = {"kubeconfig": pod_kubeconfig(sandbox)}
    for name, data in (("kibertas-async", secret_data), ("kibertas-async-kubeconfig", kubeconfig)):
        metadata = {"name": name, "namespace": NAMESPACE}
        documents.append({"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "stringData": data})
    return documents


def job_named(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return the_one([document for document in documents if document["metadata"]["name"] == name], "Job")


def report_bucket(settings: dict[str, Any]) -> Any:
    """The report bucket in the home cluster's moto (created if missing), as a boto3 ``Bucket``."""
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    s3 = boto3.resource(
        "s3",
        endpoint_url=settings["aws-endpoint-url"],
        region_name=settings["aws-region"],
        aws_access_key_id=settings["aws-access-key-id"],
        aws_secret_access_key=settings["aws-secret-access-key"],
        config=Config(s3={"addressing_style": "path"}),
    )
    bucket = s3.Bucket(REPORT_BUCKET)
    if bucket.creation_date is None:
        bucket.create()
    return bucket


def stored_reports(bucket: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """Every object under ``prefix``, read as JSON, by key."""
    return {item.key: json.loads(item.get()["Body"].read()) for item in bucket.objects.filter(Prefix=prefix)}


async def wait_job(kube: KubeClient, name: str) -> KubeObject:
    with anyio.fail_after(JOB_LIMIT):
        done = await kube.wait_for(JOBS, name, NAMESPACE, job_finished)
    assert done is not None
    return done


async def leftovers_once_settled(sandbox: Sandbox, run_id: str) -> list[str]:
    """Everything carrying the run's labels on either cluster, once deletions have had time to settle."""
    deadline = time.monotonic() + GONE_LIMIT
    while True:
        found = await find_leftovers(sandbox, run_id)
        if not found or time.monotonic() > deadline:
            return found
        await anyio.sleep(1)


async def run_the_overlay(sandbox: Sandbox, bucket: Any, merged_dir: Path) -> ShardedRun:
    home = sandbox.cluster(HOME)
    prefix = f"sharded/{secrets.token_hex(4)}/"
    async with ChatworkStandin(rooms={CHATWORK_ROOM}) as chatwork, api_client(home) as api:
        kube = KubeClient(api, home.name)
        if await kube.get(NAMESPACES, NAMESPACE) is None:
            await kube.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
        documents = sharded_documents(
            sandbox, chatwork, report_s3=f"s3://{REPORT_BUCKET}/{prefix}", merged_dir=merged_dir
        )
        kubectl = [str(sandbox.binaries.kubectl), f"--kubeconfig={home.kubeconfig}"]
        listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}).encode()
        started = time.monotonic()
        await anyio.run_process([*kubectl, "apply", "-f", "-"], input=listed)
        shards_job = await wait_job(kube, SHARDS_JOB)
        merge_job = await wait_job(kube, MERGE_JOB)
        print(f"kubectl apply to both Jobs finished, {SHARDS} shards: {time.monotonic() - started:.1f}s")
        run_id = str(shards_job["metadata"]["uid"])
        work_dir = home.directory / "addons" / NodeAgentAddon.name
        shard_pods = (await kube.list(PODS, NAMESPACE, label_selector=f"job-name={SHARDS_JOB}"))["items"]
        [merge_pod] = (await kube.list(PODS, NAMESPACE, label_selector=f"job-name={MERGE_JOB}"))["items"]

        def container_log(pod: KubeObject, container: str) -> str:
            path = pod_log_path(work_dir, NAMESPACE, pod["metadata"]["name"], container)
            return path.read_text() if path.exists() else f"<no log at {path}>"

        reports = await anyio.to_thread.run_sync(stored_reports, bucket, prefix)
        merged_file = merged_dir / "merged.json"
        return ShardedRun(
            run_id=run_id,
            report_prefix=prefix,
            shards_job=shards_job,
            merge_job=merge_job,
            shard_pods=shard_pods,
            shard_logs={pod["metadata"]["name"]: container_log(pod, "kibertas-async") for pod in shard_pods},
            merge_pod=merge_pod,
            merge_log=container_log(merge_pod, "merge"),
            report_keys=sorted(reports),
            shard_reports=reports,
            merged_report=json.loads(merged_file.read_text()) if merged_file.exists() else {},
            messages=list(chatwork.messages),
            left=await leftovers_once_settled(sandbox, run_id),
        )


def completion_index(pod: KubeObject) -> str:
    """The index the Job controller gave the pod (its annotation)."""
    return str(pod["metadata"].get("annotations", {}).get(COMPLETION_INDEX))


def all_logs(run: ShardedRun) -> str:
    shards = "\n".join(f"--- {name}\n{log[-3000:]}" for name, log in run.shard_logs.items())
    return f"{shards}\n--- merge\n{run.merge_log[-3000:]}"


def test_every_index_ran_on_the_agent_node_as_its_own_shard(sharded_run: ShardedRun) -> None:
    """One pod per index, each on the agent's node, ended 0, and the shard it ran is the one its
    ``JOB_COMPLETION_INDEX`` (injected by the Job controller, not by the manifest) names."""
    assert job_conditions(sharded_run.shards_job).get("Complete") == "True", all_logs(sharded_run)
    pods = sharded_run.shard_pods
    assert sorted(completion_index(pod) for pod in pods) == [str(index) for index in range(SHARDS)]
    for pod in pods:
        name = pod["metadata"]["name"]
        log = sharded_run.shard_logs[name]
        index = int(completion_index(pod))
        assert pod["spec"]["nodeName"] == node_name(HOME), name
        assert pod["status"]["phase"] == "Succeeded", log
        assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0, log
        [container] = pod["spec"]["containers"]
        injected = {variable["name"]: variable for variable in container["env"]}["JOB_COMPLETION_INDEX"]
        # The Job controller's fieldRef: to the pod's label since Kubernetes 1.28, its annotation before.
        assert injected["valueFrom"]["fieldRef"]["fieldPath"] in {
            f"metadata.{where}['{COMPLETION_INDEX}']" for where in ("labels", "annotations")
        }, injected
        [stored] = [event for event in json_events(log) if event.get("event") == "shard.report_stored"]
        assert stored["shard"] == f"{index + 1}/{SHARDS}", log
        assert stored["run_id"] == sharded_run.run_id, log
        assert stored["report"] == f"{sharded_run.run_id}.shard-{index + 1}-of-{SHARDS}.json", log


def test_the_shards_ran_every_cell_of_the_matrix_once_between_them(sharded_run: ShardedRun) -> None:
    ran: list[tuple[str, str]] = []
    for log in sharded_run.shard_logs.values():
        finished = [event for event in json_events(log) if event.get("event") == "check.finished"]
        ran += [(event["cluster"], event["check"]) for event in finished]
    assert sorted(ran) == sorted((cluster, check) for cluster in CLUSTERS for check in CHECKS), all_logs(sharded_run)
    # Shard 2 of 3 holds a cell of each cluster: it reached both API servers from the agent's node.
    [middle] = [pod for pod in sharded_run.shard_pods if completion_index(pod) == "1"]
    middle_log = sharded_run.shard_logs[middle["metadata"]["name"]]
    clusters = {event["cluster"] for event in json_events(middle_log) if event.get("event") == "check.finished"}
    assert clusters == set(CLUSTERS), middle_log


def test_every_shard_report_is_in_s3_under_the_run_prefix(sharded_run: ShardedRun) -> None:
    run_id, prefix = sharded_run.run_id, sharded_run.report_prefix
    expected = [f"{prefix}{run_id}.shard-{index}-of-{SHARDS}.json" for index in range(1, SHARDS + 1)]
    assert sharded_run.report_keys == expected, all_logs(sharded_run)
    for index, key in enumerate(expected, start=1):
        report = sharded_run.shard_reports[key]
        assert report["run_id"] == run_id
        assert report["shard"]["index"] == index
        assert report["shard"]["count"] == SHARDS


def test_the_merge_job_completes_with_every_cell_once_and_passed(sharded_run: ShardedRun) -> None:
    assert job_conditions(sharded_run.merge_job).get("Complete") == "True", all_logs(sharded_run)
    assert sharded_run.merge_pod["spec"]["nodeName"] == node_name(HOME)
    report = sharded_run.merged_report
    assert report, sharded_run.merge_log
    assert report["run_id"] == sharded_run.run_id
    cells = Counter((result["cluster"], result["check"]) for result in report["results"])
    assert cells == Counter({(cluster, check): 1 for cluster in CLUSTERS for check in CHECKS}), report["results"]
    outcomes = {(result["cluster"], result["check"]): result["outcome"] for result in report["results"]}
    assert set(outcomes.values()) == {"passed"}, report["results"]
    assert report["shard"]["merged"] == list(range(1, SHARDS + 1))
    assert report["shard"]["missing"] == []
    assert f"shards: {SHARDS} of {SHARDS} reported (run {sharded_run.run_id})" in sharded_run.merge_log


def test_chatwork_got_one_message_naming_every_cell(sharded_run: ShardedRun) -> None:
    [message] = sharded_run.messages
    assert message.room_id == CHATWORK_ROOM
    times = "\N{MULTIPLICATION SIGN}"
    title = f"kibertas-async OK — {len(CLUSTERS)} clusters {times} {len(CHECKS)} checks (run {sharded_run.run_id})"
    assert message.body.startswith(f"[info][title]{title}[/title]"), message.body
    sections = {section.splitlines()[0]: section for section in message.body.split("[hr]")[:-1]}
    for cluster in CLUSTERS:
        section = next(body for head, body in sections.items() if head.endswith(f"■ {cluster} — OK"))
        for check in CHECKS:
            assert f"OK {check} (" in section, message.body


def test_nothing_labelled_by_the_run_is_left_in_either_cluster(sharded_run: ShardedRun) -> None:
    assert sharded_run.left == [], all_logs(sharded_run)
