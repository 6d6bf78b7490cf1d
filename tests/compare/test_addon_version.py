"""The add-on version facts: label first, then the image tag; not found and failed lookups never fail
the check."""

from __future__ import annotations

from typing import Any

import pytest

from kibertas_async.checks import CheckContext, CleanupGuard, CleanupStack
from kibertas_async.checks.addon_version import (
    find_addon_version,
    image_tag,
    parse_workload,
    report_addon_version,
    version_of,
    workload_option,
)
from kibertas_async.events import get_logger
from kibertas_async.kube import ClusterTarget, KubeApiError, KubeUnavailable
from kibertas_async.kube.resources import Resource
from kibertas_async.options import OptionValues


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("quay.io/jetstack/cert-manager-controller:v1.15.0", "v1.15.0"),
        ("localhost:5000/team/agent:7.52.1@sha256:0123456789abcdef0123", "7.52.1"),
        ("registry.k8s.io/external-dns/external-dns", "latest"),
        ("localhost:5000/fluentd", "latest"),
        ("ghcr.io/a/b@sha256:0123456789abcdef0123456789", "sha256:0123456789ab"),
    ],
)
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


def deployment(name: str, image: str = "", labels: dict[str, str] | None = None, **template: str) -> dict[str, Any]:
    containers = [{"name": "other", "image": "sidecar:9"}, {"name": name, "image": image}] if image else []
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ns", "labels": labels or {}},
        "spec": {"template": {"metadata": {"labels": dict(template)}, "spec": {"containers": containers}}},
    }


def test_the_version_label_wins_over_the_image_tag_and_the_named_container_over_the_first() -> None:
    labelled = deployment("cert-manager", "quay.io/cm:v1.15.0", {"app.kubernetes.io/version": "v1.15.1"})
    assert version_of(labelled, ("cert-manager",)).version == "v1.15.1"
    in_template = deployment("cert-manager", "quay.io/cm:v1.15.0", None, **{"app.kubernetes.io/version": "v1.15.2"})
    assert version_of(in_template, ("cert-manager",)).version == "v1.15.2"
    found = version_of(deployment("cert-manager", "quay.io/cm:v1.15.0"), ("cert-manager",))
    assert (found.version, found.image, found.workload) == (
        "v1.15.0",
        "quay.io/cm:v1.15.0",
        "Deployment ns/cert-manager",
    )


def test_workload_option_parses_namespace_and_names() -> None:
    option = workload_option("cluster-autoscaler", "kube-system/cluster-autoscaler,aws-cluster-autoscaler")
    assert option.name == "cluster-autoscaler-workload"
    assert option.default.namespace == "kube-system"
    assert option.default.names == ("cluster-autoscaler", "aws-cluster-autoscaler")
    assert workload_option("ingress controller", "a/b").name == "ingress-controller-workload"
    for bad in ("no-slash", "ns/", "/name", "NS/name", "ns/a,,b"):
        with pytest.raises(ValueError, match="is not NAMESPACE/NAME"):
            parse_workload(bad)


class FakeKube:
    """Answers ``list`` from fixed objects per kind, or raises what it was given."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]], error: Exception | None = None) -> None:
        self.objects = objects
        self.error = error
        self.listed: list[tuple[str, str | None]] = []

    async def list(self, resource: Resource, namespace: str | None = None, **_: Any) -> dict[str, Any]:
        self.listed.append((resource.plural, namespace))
        if self.error is not None:
            raise self.error
        return {"items": self.objects.get(resource.plural, [])}


@pytest.mark.anyio
async def test_an_exact_name_beats_a_name_label_and_names_are_tried_in_order() -> None:
    webhook = deployment("cert-manager-webhook", "cm-webhook:v1.0", {"app.kubernetes.io/name": "cert-manager"})
    controller = deployment("cert-manager", "cm-controller:v1.14.2")
    kube = FakeKube({"deployments": [webhook, controller]})
    found = await find_addon_version(kube, parse_workload("cert-manager/cert-manager"))  # type: ignore[arg-type]
    assert found.version == "v1.14.2"
    # The first name matched a Deployment exactly: no DaemonSet could win, so none are listed (P4).
    assert kube.listed == [("deployments", "cert-manager")]
    kube = FakeKube({"deployments": [webhook]})  # only a name label matches: a DaemonSet named so would win
    found = await find_addon_version(kube, parse_workload("cert-manager/cert-manager"))  # type: ignore[arg-type]
    assert found.workload == "Deployment ns/cert-manager-webhook"
    assert kube.listed == [("deployments", "cert-manager"), ("daemonsets", "cert-manager")]
    agent = {**deployment("datadog", "gcr.io/datadoghq/agent:7"), "kind": "DaemonSet"}
    kube = FakeKube({"daemonsets": [agent]})
    found = await find_addon_version(kube, parse_workload("datadog/datadog-agent,datadog"))  # type: ignore[arg-type]
    assert (found.version, found.workload) == ("7", "DaemonSet ns/datadog")
    assert kube.listed == [("deployments", "datadog"), ("daemonsets", "datadog")]


def _context(kube: object) -> CheckContext:
    return CheckContext(
        run_id="r",
        check_name="c",
        cluster=ClusterTarget("old"),
        options=OptionValues({}, {}),
        log=get_logger(),
        cleanup=CleanupStack(keep=False, action_timeout=1.0, guard=CleanupGuard()),
        kube=kube,  # type: ignore[arg-type]
    )


@pytest.mark.anyio
async def test_facts_for_found_missing_forbidden_unreachable_and_no_client() -> None:
    workload = parse_workload("kube-system/external-dns")
    found = _context(FakeKube({"deployments": [deployment("external-dns", "registry.k8s.io/external-dns:v0.21.0")]}))
    await report_addon_version(found, "external-dns", workload)
    assert found.facts == {
        "external-dns version": "v0.21.0",
        "external-dns image": "registry.k8s.io/external-dns:v0.21.0",
    }
    missing = _context(FakeKube({}))
    await report_addon_version(missing, "external-dns", workload)
    assert missing.facts == {
        "external-dns version": "not found (no Deployment or DaemonSet external-dns in namespace kube-system)"
    }
    denied = KubeApiError(403, "Forbidden", 'cannot list resource "deployments"', method="GET", path="/apis/apps")
    forbidden = _context(FakeKube({}, error=denied))
    await report_addon_version(forbidden, "external-dns", workload)
    assert forbidden.facts["external-dns version"].startswith("unknown (listing workloads in kube-system: GET")
    assert 'cannot list resource "deployments"' in forbidden.facts["external-dns version"]
    down = _context(FakeKube({}, error=KubeUnavailable("connection refused")))
    await report_addon_version(down, "external-dns", workload)
    assert down.facts == {"external-dns version": "unknown (API server unreachable: connection refused)"}
    without = _context(None)
    await report_addon_version(without, "external-dns", workload)
    assert without.facts == {"external-dns version": "unknown (no Kubernetes client)"}
