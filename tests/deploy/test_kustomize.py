"""deploy/: the kustomize base and overlays render, with the kinds and settings docs/deploy.md describes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.deploy.conftest import BASE, OVERLAYS, by_kind, documents, job_spec, kustomize, kustomize_in_namespace

RBAC_KINDS = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
EXPECTED_KINDS = {
    BASE: sorted([*RBAC_KINDS, "ConfigMap", "Job"]),
    OVERLAYS / "argocd-postsync": sorted([*RBAC_KINDS, "ConfigMap", "Job"]),
    OVERLAYS / "cronjob": sorted([*RBAC_KINDS, "ConfigMap", "CronJob"]),
}
SECRET_ENV = {
    "DD_API_KEY": "dd-api-key",
    "DD_APP_KEY": "dd-app-key",
    "CLUSTER_NAME": "cluster-name",
    "DD_CLUSTER_NAME": "cluster-name",
    "CHATWORK_ROOM_ID": "chatwork-room-id",
    "CHATWORK_API_TOKEN": "chatwork-api-token",
}


@pytest.mark.parametrize("directory", list(EXPECTED_KINDS), ids=lambda path: str(path.relative_to(BASE.parent)))
def test_renders_the_expected_kinds(directory: Path) -> None:
    docs = documents(kustomize(directory))
    assert sorted(doc["kind"] for doc in docs) == EXPECTED_KINDS[directory]
    namespaced = [doc for doc in docs if not doc["kind"].startswith("Cluster")]
    assert {doc["metadata"].get("namespace") for doc in namespaced} == {"kibertas-async"}


def test_base_job_settings() -> None:
    docs = documents(kustomize(BASE))
    spec = job_spec(docs)
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] > 0
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == by_kind(docs, "ServiceAccount")[0]["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (65532, 65532)
    assert container["image"] == "localhost/kibertas-async:dev"
    assert container["args"][:4] == ["run", "--all", "--log-format", "json"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"requests", "limits"} <= set(container["resources"])
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    # --config names the file of the mounted ConfigMap (its generated, hashed name).
    config_dir = container["args"][container["args"].index("--config") + 1].rsplit("/", 1)[0]
    (configmap,) = by_kind(docs, "ConfigMap")
    assert volumes[mounts[config_dir]]["configMap"]["name"] == configmap["metadata"]["name"]
    env = {item["name"]: item["valueFrom"]["secretKeyRef"] for item in container["env"]}
    assert {name: ref["key"] for name, ref in env.items()} == SECRET_ENV
    assert all(ref["optional"] is True and ref["name"] == "kibertas-async" for ref in env.values())


def test_the_image_is_overridable_with_kustomize_images(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(BASE, overlay)}]\n"
        "images:\n- name: localhost/kibertas-async\n  newName: registry.example.com/kibertas-async\n  newTag: 1.2.3\n"
    )
    (container,) = job_spec(documents(kustomize(overlay)))["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/kibertas-async:1.2.3"


def test_argocd_overlay_is_a_postsync_hook() -> None:
    (job,) = by_kind(documents(kustomize(OVERLAYS / "argocd-postsync")), "Job")
    assert job["metadata"]["annotations"] == {
        "argocd.argoproj.io/hook": "PostSync",
        "argocd.argoproj.io/hook-delete-policy": "HookSucceeded,BeforeHookCreation",
    }


def test_cronjob_runs_the_base_job_spec() -> None:
    """The CronJob's jobTemplate is the base Job's spec, copied by kustomize: one pod spec, not two."""
    (cronjob,) = by_kind(documents(kustomize(OVERLAYS / "cronjob")), "CronJob")
    assert cronjob["spec"]["jobTemplate"]["spec"] == job_spec(documents(kustomize(BASE)))
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["schedule"]
    assert cronjob["spec"]["startingDeadlineSeconds"] > 0


@pytest.mark.parametrize("overlay", ["argocd-postsync", "cronjob"])
def test_another_namespace_moves_the_service_account_and_its_binding(overlay: str, tmp_path: Path) -> None:
    docs = documents(kustomize_in_namespace(OVERLAYS / overlay, "ops-checks", tmp_path / "ns"))
    (account,) = by_kind(docs, "ServiceAccount")
    (binding,) = by_kind(docs, "ClusterRoleBinding")
    assert account["metadata"]["namespace"] == "ops-checks"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kibertas-async", "namespace": "ops-checks"}]
