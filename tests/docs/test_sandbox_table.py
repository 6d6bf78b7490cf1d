"""The "real and stand-in" table (README and docs/sandbox.md) tells the truth: one table in both places,
a row for every add-on the sandbox starts, and the versions the code builds."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kibertas_async.sandbox.addons.discovery import default_addons, optional_addons
from kibertas_async.sandbox.argocd import ARGOCD_VERSION
from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION, ETCD_VERSION, KWOK_VERSION
from kibertas_async.testing import ci_requires_sandbox
from kibertas_async_cert_manager.sandbox.addon import (
    CERT_MANAGER_VERSION,
    CONTROLLER_ENV,
    CONTROLLER_VERSION,
    use_real_controller,
)
from kibertas_async_cluster_autoscaler.sandbox.karpenter import KARPENTER_VERSION
from kibertas_async_ingress.sandbox import CONTROLLERS, EXTERNAL_DNS_VERSION

ROOT = Path(__file__).resolve().parents[2]
HEADING = "What the sandbox runs: real and stand-in"

# Each add-on `sandbox up` starts → the first cell of its row. A new add-on fails this test until the
# table says what it is.
ROW_OF_ADDON = {
    "kwok": "nodes and pods",
    "bind9": "DNS zone (ingress)",
    "external-dns": "external-dns (ingress)",
    "ingress-controller": "ingress controller / load balancer (ingress)",
    "cert-manager": "cert-manager controller",
    "sandbox-autoscaler": "cluster-autoscaler",
    "karpenter": "Karpenter",
    "datadog": "Datadog metrics API (datadog-agent)",
    "fluent": "fluentd (fluent)",
    "node-agent": "node agent (opt-in: `sandbox up --addons ...,node-agent`)",
    "argocd": "Argo CD (opt-in: `sandbox up --addons ...,argocd`)",
}


def _table(path: Path) -> dict[str, str]:
    """First cell → the whole row, of the table in the section headed :data:`HEADING`."""
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(HEADING)}\n(.*?)(?=^#+ )", text, flags=re.DOTALL | re.MULTILINE)
    assert match, f"{path.name} has no section '{HEADING}'"
    rows = [line for line in match.group(1).splitlines() if line.startswith("| ") and not line.startswith("| part ")]
    assert rows, f"{path.name}: the section has no table"
    return {row.split(" | ")[0].removeprefix("| ").strip(): row for row in rows}


README = _table(ROOT / "README.md")
DOCS = _table(ROOT / "docs" / "sandbox.md")


def test_readme_and_docs_show_the_same_table() -> None:
    assert README == DOCS


def test_every_add_on_the_sandbox_starts_has_a_row() -> None:
    names = [addon.name for addon in (*default_addons(), *optional_addons())]
    assert set(names) <= set(ROW_OF_ADDON), f"add a row for {sorted(set(names) - set(ROW_OF_ADDON))}"
    for name in names:
        assert ROW_OF_ADDON[name] in README, name


def test_the_versions_are_the_ones_the_code_builds() -> None:
    helm = re.search(r"HELM_VERSION:-(v[0-9.]+)", (ROOT / "scripts" / "helm").read_text())
    assert helm
    expected = {
        "etcd": f"v{ETCD_VERSION}",
        "kube-apiserver, kube-controller-manager, kube-scheduler, kubectl": f"v{DEFAULT_KUBERNETES_VERSION}",
        "nodes and pods": f"kwok v{KWOK_VERSION}",
        "external-dns (ingress)": EXTERNAL_DNS_VERSION,
        "cert-manager CRDs": CERT_MANAGER_VERSION,
        "cert-manager controller": CONTROLLER_VERSION,
        "Karpenter": KARPENTER_VERSION,
        "Argo CD (opt-in: `sandbox up --addons ...,argocd`)": ARGOCD_VERSION,
        "helm": helm.group(1),
    }
    for row, version in expected.items():
        assert version in README[row], (row, version)


def test_the_cert_manager_controller_is_real_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONTROLLER_ENV, raising=False)
    assert use_real_controller()
    assert "**real by default**" in README["cert-manager controller"]
    monkeypatch.setenv(CONTROLLER_ENV, "stand-in")
    assert not use_real_controller()
    assert f"`{CONTROLLER_ENV}=stand-in`" in README["cert-manager controller"]


def test_the_load_balancer_classes_are_the_ones_the_sandbox_serves() -> None:
    row = README["ingress controller / load balancer (ingress)"]
    published = {controller.ingress_class: controller.publish for controller in CONTROLLERS}
    assert published == {"alb": "hostname", "nginx": "ip"}
    assert "class `alb` publishes a host name" in row
    assert "class `nginx` publishes an IP" in row


def test_bind9_is_debian_12_s() -> None:
    named = shutil.which("named") or shutil.which("named", path="/usr/sbin")
    if named is None:
        if ci_requires_sandbox():
            pytest.fail("CI is set and BIND9 is not installed (apt-get install -y bind9)", pytrace=False)
        pytest.skip("BIND9 is not installed here (apt-get install -y bind9)")
    version = subprocess.run([named, "-v"], capture_output=True, text=True, check=True, timeout=30).stdout
    assert re.match(r"BIND 9\.18\.\S*deb12", version), version
    assert "Debian 12's `bind9` package (`named` 9.18" in README["DNS zone (ingress)"]
