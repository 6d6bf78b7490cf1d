"""The Helm chart: lint, render (a Job, a CronJob with a schedule, the Argo CD hook), the generated
RBAC rules, and the same pod as deploy/base."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    BASE,
    CHART,
    CLI,
    HELM_VARIANTS,
    RBAC_COMMAND,
    by_kind,
    documents,
    helm_environment,
    helm_template,
    job_spec,
    kustomize,
)

EXPECTED_KINDS = {
    "default": ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "Job", "ServiceAccount"],
    "schedule": ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "CronJob", "ServiceAccount"],
    "argocd-hook": ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "Job", "ServiceAccount"],
}


@pytest.mark.parametrize("variant", list(HELM_VARIANTS))
def test_helm_lint(helm: Path, variant: str) -> None:
    result = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), *HELM_VARIANTS[variant]],
        capture_output=True,
        text=True,
        timeout=120,
        env=helm_environment(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", list(HELM_VARIANTS))
def test_helm_template_kinds(helm: Path, variant: str) -> None:
    docs = documents(helm_template(helm, *HELM_VARIANTS[variant]))
    assert sorted(doc["kind"] for doc in docs) == EXPECTED_KINDS[variant]


def test_helm_argocd_hook_and_schedule(helm: Path) -> None:
    (job,) = by_kind(documents(helm_template(helm, *HELM_VARIANTS["argocd-hook"])), "Job")
    assert job["metadata"]["annotations"] == {
        "argocd.argoproj.io/hook": "PostSync",
        "argocd.argoproj.io/hook-delete-policy": "HookSucceeded,BeforeHookCreation",
    }
    (plain,) = by_kind(documents(helm_template(helm)), "Job")
    assert "annotations" not in plain["metadata"]
    (cronjob,) = by_kind(documents(helm_template(helm, *HELM_VARIANTS["schedule"])), "CronJob")
    assert cronjob["spec"]["schedule"] == "0 3 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["startingDeadlineSeconds"] > 0
    assert cronjob["spec"]["jobTemplate"]["spec"] == job_spec(documents(helm_template(helm)))


def test_helm_rbac_rules_are_the_generated_ones(helm: Path) -> None:
    generated = documents(subprocess.run([str(CLI), *RBAC_COMMAND], capture_output=True, check=True, text=True).stdout)
    docs = documents(helm_template(helm, namespace="ops", release="checks"))
    (role,) = by_kind(docs, "ClusterRole")
    assert role["rules"] == by_kind(generated, "ClusterRole")[0]["rules"]
    assert len(by_kind(docs, "Role")) == len(by_kind(generated, "Role"))
    (account,) = by_kind(docs, "ServiceAccount")
    (binding,) = by_kind(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "ops"}]
    assert job_spec(docs)["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]


def test_helm_values_checks_config_image_secret(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "checks": ["ingress", "cert-manager"],
                "config": {"defaults": {"ingress-class": "alb"}, "clusters": {"prod": {"ingress-hostname": "a.b"}}},
                "image": {"repository": "registry.example.com/kibertas-async", "tag": "1.2.3", "pullPolicy": "Always"},
                "secretName": "kibertas-test",
            }
        )
    )
    docs = documents(helm_template(helm, "--values", str(values)))
    (container,) = job_spec(docs)["template"]["spec"]["containers"]
    assert container["args"][:3] == ["run", "ingress", "cert-manager"]
    assert "--all" not in container["args"]
    assert (container["image"], container["imagePullPolicy"]) == ("registry.example.com/kibertas-async:1.2.3", "Always")
    assert {item["valueFrom"]["secretKeyRef"]["name"] for item in container["env"]} == {"kibertas-test"}
    (configmap,) = by_kind(docs, "ConfigMap")
    assert yaml.safe_load(configmap["data"]["kibertas-async.yaml"]) == {
        "defaults": {"ingress-class": "alb"},
        "clusters": {"prod": {"ingress-hostname": "a.b"}},
    }


def normalized_pod(spec: dict[str, Any]) -> dict[str, Any]:
    """The pod spec with what legitimately differs between kustomize and Helm blanked: object names
    (the ConfigMap's hash suffix, release names) and the durations' spelling (1h, 3600s)."""
    from kibertas_async.options import parse_duration

    pod: dict[str, Any] = yaml.safe_load(yaml.safe_dump(spec["template"]["spec"]))
    pod["serviceAccountName"] = "<name>"
    for volume in pod["volumes"]:
        if "configMap" in volume:
            volume["configMap"]["name"] = "<name>"
    for container in pod["containers"]:
        args = container["args"]
        for index, arg in enumerate(args[:-1]):
            if arg.endswith("-timeout"):
                args[index + 1] = parse_duration(args[index + 1])
    return pod


def test_helm_pod_is_the_kustomize_pod(helm: Path) -> None:
    """The chart carries the same content as deploy/base (names aside): change them together."""
    base, chart = job_spec(documents(kustomize(BASE))), job_spec(documents(helm_template(helm)))
    assert normalized_pod(chart) == normalized_pod(base)
    assert {key: value for key, value in chart.items() if key != "template"} == {
        key: value for key, value in base.items() if key != "template"
    }
