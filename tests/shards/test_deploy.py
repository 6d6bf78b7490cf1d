"""deploy/overlays/sharded (deploy/components/sharded) and the Helm chart with ``shards``: the Indexed
Job of shards and the merge Job render with the settings docs/sharding.md explains, keep their time
relations, are accepted by a real API server (server-side dry-run on the sandbox), and their args are a
valid run and merge."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kibertas_async.options import parse_duration
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl
from tests.deploy.conftest import (
    BASE,
    CHART,
    CLI,
    OVERLAYS,
    by_kind,
    documents,
    helm_environment,
    helm_template,
    kustomize,
    kustomize_in_namespace,
)
from tests.shards.conftest import CLUSTERS

SHARDED = OVERLAYS / "sharded"
REPORT_S3 = "s3://change-me-report-bucket/kibertas-async/"
HELM_SHARDED = (
    *("--set", "shards=3", "--set", f"sharding.reportS3={REPORT_S3}"),
    *("--set", "sharding.clusters=cluster-a\\,cluster-b\\,cluster-c"),
)


@pytest.fixture(params=["kustomize", "helm"])
def source(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def render(
    source: str, request: pytest.FixtureRequest, namespace: str = "kibertas-async", scratch: Path | None = None
) -> str:
    if source == "kustomize":
        if namespace == "kibertas-async":
            return kustomize(SHARDED)
        assert scratch is not None
        return kustomize_in_namespace(SHARDED, namespace, scratch)
    return helm_template(request.getfixturevalue("helm"), *HELM_SHARDED, namespace=namespace)


@pytest.fixture
def rendering(source: str, request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return documents(render(source, request))


def resolved_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, Any]:
    """The container's env, ConfigMap references replaced by their values."""
    configmaps = {c["metadata"]["name"]: c["data"] for c in by_kind(docs, "ConfigMap")}
    env = env_of(container)
    for name, value in env.items():
        if isinstance(value, dict) and "configMapKeyRef" in value:
            env[name] = configmaps[value["configMapKeyRef"]["name"]][value["configMapKeyRef"]["key"]]
    return env


def jobs(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    by_name = {job["metadata"]["name"]: job for job in by_kind(docs, "Job")}
    assert sorted(by_name) == ["kibertas-async", "kibertas-async-merge"]
    return by_name["kibertas-async"], by_name["kibertas-async-merge"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def test_renders_the_base_plus_the_merge_job_and_its_role(rendering: list[dict[str, Any]], source: str) -> None:
    kinds = sorted(doc["kind"] for doc in rendering)
    rbac = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    configmaps = ["ConfigMap", "ConfigMap"] if source == "kustomize" else ["ConfigMap"]  # Helm: values inline
    assert kinds == sorted([*rbac, *configmaps, "Job", "Job"])
    if source == "kustomize":  # helm template leaves the namespace to helm install
        assert {doc["metadata"].get("namespace") for doc in rendering if not doc["kind"].startswith("Cluster")} == {
            "kibertas-async"
        }


def test_the_shards_are_an_indexed_job_whose_count_and_run_id_reach_every_pod(rendering: list[dict[str, Any]]) -> None:
    shards, _ = jobs(rendering)
    spec = shards["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] >= 2
    # No retry of an index, and one shard's NG never stops the others (no Job-wide backoffLimit 0).
    assert spec["backoffLimitPerIndex"] == 0 and "backoffLimit" not in spec
    (container,) = spec["template"]["spec"]["containers"]
    env = resolved_env(rendering, container)
    assert env["KIBERTAS_ASYNC_SHARDS"] == str(spec["completions"])
    assert env["KIBERTAS_ASYNC_RUN_ID"] == {
        "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/controller-uid']"}
    }
    assert env["KIBERTAS_ASYNC_REPORT_S3"] == REPORT_S3
    assert env["KIBERTAS_ASYNC_CLUSTERS"].split(",")[:3] == ["cluster-a", "cluster-b", "cluster-c"]
    assert container["args"][:2] == ["run", "--all"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert env["KUBECONFIG"].startswith(mounts["kubeconfig"] + "/")
    assert not mounts["kubeconfig"].startswith(mounts["config"] + "/"), "a mount inside the ConfigMap's mount"


def test_the_merge_job_waits_for_the_shards_job_and_may_read_it_only(rendering: list[dict[str, Any]]) -> None:
    shards, merge = jobs(rendering)
    pod = merge["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[:2] == ["report", "merge"]
    assert args[2] in ("$(KIBERTAS_ASYNC_REPORT_S3)", REPORT_S3)  # kustomize: from the ConfigMap; Helm: the value
    assert args[args.index("--job") + 1] == shards["metadata"]["name"]
    assert merge["spec"]["backoffLimit"] == 0, "one message per run"
    assert pod["serviceAccountName"] == shards["spec"]["template"]["spec"]["serviceAccountName"]
    (role,) = by_kind(rendering, "Role")
    assert role["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": [shards["metadata"]["name"]], "verbs": ["get"]}
    ]
    (binding,) = by_kind(rendering, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "kibertas-async"}
    ]
    env = env_of(container)
    assert {"CHATWORK_ROOM_ID", "CHATWORK_API_TOKEN", "POD_NAMESPACE"} <= set(env)
    assert all(env[name]["secretKeyRef"]["optional"] is True for name in ("CHATWORK_ROOM_ID", "CHATWORK_API_TOKEN"))


def test_the_merge_outwaits_the_shards(rendering: list[dict[str, Any]]) -> None:
    shards, merge = jobs(rendering)
    shards_end = (
        shards["spec"]["activeDeadlineSeconds"] + shards["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    )
    args = merge["spec"]["template"]["spec"]["containers"][0]["args"]
    wait = parse_duration(args[args.index("--wait") + 1])
    notify = parse_duration(args[args.index("--notify-timeout") + 1])
    assert shards_end < wait, (shards_end, wait)
    assert wait + notify < merge["spec"]["activeDeadlineSeconds"], (
        wait,
        notify,
        merge["spec"]["activeDeadlineSeconds"],
    )


def test_the_shard_pod_spec_is_otherwise_the_unsharded_one(
    rendering: list[dict[str, Any]], source: str, request: pytest.FixtureRequest
) -> None:
    shards, _ = jobs(rendering)
    unsharded = kustomize(BASE) if source == "kustomize" else helm_template(request.getfixturevalue("helm"))
    (base,) = by_kind(documents(unsharded), "Job")
    ours, theirs = shards["spec"]["template"]["spec"], base["spec"]["template"]["spec"]
    assert {k: v for k, v in ours.items() if k not in ("containers", "volumes")} == {
        k: v for k, v in theirs.items() if k not in ("containers", "volumes")
    }
    assert ours["containers"][0]["args"] == theirs["containers"][0]["args"]
    assert ours["containers"][0]["securityContext"] == theirs["containers"][0]["securityContext"]


def test_the_sandbox_api_server_accepts_it(
    six_clusters: Sandbox, tmp_path: Path, source: str, request: pytest.FixtureRequest
) -> None:
    namespace = f"sharded-dry-run-{secrets.token_hex(4)}"
    cluster = CLUSTERS[0]
    kubectl(six_clusters, cluster, "create", "namespace", namespace)
    try:
        text = render(source, request, namespace, tmp_path / "overlay")
        apply = ("apply", "--dry-run=server", "--namespace", namespace, "-f", "-")
        result = kubectl(six_clusters, cluster, *apply, input=text, check=False)
        assert result.returncode == 0, f"server-side dry-run refused it:\n{result.stderr}"
        assert len([line for line in result.stdout.splitlines() if "(server dry run)" in line]) == len(documents(text))
    finally:
        kubectl(six_clusters, cluster, "delete", "namespace", namespace, "--wait=false", check=False)


def test_the_pod_args_and_env_are_a_valid_shard_run(
    rendering: list[dict[str, Any]], six_kubeconfig: Path, tmp_path: Path
) -> None:
    """Pod 2's args and environment (the ConfigMaps' values, the Job's uid), with the sandbox's six clusters
    for the placeholder ones: ``--dry-run`` accepts them and shows shard 2/3."""
    shards, _ = jobs(rendering)
    (container,) = shards["spec"]["template"]["spec"]["containers"]
    configmaps = {c["metadata"]["name"]: c["data"] for c in by_kind(rendering, "ConfigMap")}
    config = tmp_path / "kibertas-async.yaml"
    config.write_text(
        next(data["kibertas-async.yaml"] for data in configmaps.values() if "kibertas-async.yaml" in data)
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIBERTAS_ASYNC_")}
    env.update({name: value for name, value in resolved_env(rendering, container).items() if isinstance(value, str)})
    env.update(
        JOB_COMPLETION_INDEX="1",
        KIBERTAS_ASYNC_RUN_ID="5c7c4c5e-8a4e-4c0b-9d59-3d0c8f8b6a11",
        KIBERTAS_ASYNC_CLUSTERS=",".join(CLUSTERS),
        KUBECONFIG=str(six_kubeconfig),
    )
    args = list(container["args"])
    args[args.index("--config") + 1] = str(config)
    result = subprocess.run([str(CLI), *args, "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "this is shard 2/3" in result.stdout
    assert (
        "report: s3://change-me-report-bucket/kibertas-async/5c7c4c5e-8a4e-4c0b-9d59-3d0c8f8b6a11.shard-2-of-3.json"
        in result.stdout
    )


def test_the_merge_args_parse(rendering: list[dict[str, Any]]) -> None:
    """``report merge``'s args as the pod gets them ($(VAR) expanded) are accepted by the parser."""
    from kibertas_async.cli.commands import load_registry
    from kibertas_async.cli.main import build_parser

    _, merge = jobs(rendering)
    args = [
        arg.replace("$(KIBERTAS_ASYNC_REPORT_S3)", "s3://bucket/prefix/")
        for arg in merge["spec"]["template"]["spec"]["containers"][0]["args"]
    ]
    parsed = build_parser(load_registry(args, os.environ)).parse_args(args)
    assert parsed.source in ("s3://bucket/prefix/", REPORT_S3)
    assert parsed.job == "kibertas-async"
    assert parse_duration(parsed.wait) == 4800


def test_helm_lint_sharded(helm: Path) -> None:
    result = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), *HELM_SHARDED],
        capture_output=True,
        text=True,
        timeout=120,
        env=helm_environment(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("--set", "shards=3"), "shards needs sharding.reportS3"),
        (("--set", "shards=3", "--set", "sharding.reportS3=s3://b/p/"), "shards needs sharding.clusters"),
        ((*HELM_SHARDED, "--set", "schedule=0 3 * * *"), "shards and schedule cannot be combined"),
        ((*HELM_SHARDED, "--set", "sharding.mergeWait=4000"), "sharding.mergeWait must exceed"),
    ],
)
def test_helm_refuses_half_a_sharding(helm: Path, values: tuple[str, ...], message: str) -> None:
    result = subprocess.run(
        [str(helm), "template", "kibertas-async", str(CHART), *values],
        capture_output=True,
        text=True,
        timeout=120,
        env=helm_environment(),
    )
    assert result.returncode != 0
    assert message in result.stderr
