"""The cert-manager check against the sandbox: passes on both clusters at once, and fails precisely.

Each failure is made on ``sandbox-1`` only (a fault of its sandbox issuer, or an option), while
``sandbox-2`` runs the same check at the same time and must still pass.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async_cert_manager.resources import CLUSTER_ISSUERS, condition
from kibertas_async_cert_manager.sandbox.addon import CONTROLLER_PROCESS, use_real_controller
from kibertas_async_cert_manager.sandbox.issuer import Fault

RunCheck = Callable[..., dict[str, Any]]
LeafFault = Callable[[Fault, str], contextlib.AbstractContextManager[None]]

BROKEN, HEALTHY = "sandbox-1", "sandbox-2"

STEPS = [
    "find ClusterIssuer",
    "create namespace",
    "issue CA certificate",
    "verify CA certificate",
    "create CA Issuer",
    "issue leaf certificate",
    "verify leaf certificate",
]


def result_of(report: dict[str, Any], cluster: str) -> dict[str, Any]:
    """The cert-manager result of ``cluster`` in a JSON report."""
    found: dict[str, Any] = next(r for r in report["results"] if r["cluster"] == cluster)
    return found


def _window(result: dict[str, object]) -> tuple[datetime, datetime]:
    started = datetime.fromisoformat(str(result["started_at"]))
    return started, started + timedelta(seconds=float(str(result["duration_seconds"])))


def test_passes_on_both_clusters_concurrently(sandbox: Sandbox, run_check: RunCheck) -> None:
    # The real cert-manager controller issues here (the stand-in stays dormant without a fault),
    # unless the sandbox was started with the stand-in alone ($KIBERTAS_ASYNC_CERT_MANAGER_CONTROLLER).
    if use_real_controller():
        for cluster in ("sandbox-1", "sandbox-2"):
            assert sandbox.cluster(cluster).processes[CONTROLLER_PROCESS].is_alive()
    report = run_check()
    assert report["ok"] is True, report["results"]
    first, second = result_of(report, "sandbox-1"), result_of(report, "sandbox-2")
    for result in (first, second):
        assert result["outcome"] == "passed", result
        assert [step["name"] for step in result["steps"]] == STEPS
        namespace = result["facts"]["namespace"]
        assert result["facts"]["leaf"].startswith(
            f"sample, sample.{namespace}.svc, sample.{namespace}.svc.cluster.local"
        )
        assert result["facts"]["ca"].startswith("CN=sample-ca (ECDSA P-256")
        assert result["facts"]["leaf_issuer"] == "CN=sample-ca"
        assert result["api_requests"] > 0
    (start_1, end_1), (start_2, end_2) = _window(first), _window(second)
    assert start_1 < end_2 and start_2 < end_1, "the two clusters were not checked at the same time"


def test_leaf_key_algorithm_option(run_check: RunCheck) -> None:
    report = run_check("--cert-manager-leaf-key-algorithm", "ecdsa")
    assert report["ok"] is True, report["results"]
    assert "(ECDSA P-256," in result_of(report, "sandbox-1")["facts"]["leaf"]


def test_missing_cluster_issuer_fails_first_step(run_check: RunCheck) -> None:
    report = run_check("--cert-manager-cluster-issuer", "no-such-issuer")
    for cluster in ("sandbox-1", "sandbox-2"):
        result = result_of(report, cluster)
        assert result["outcome"] == "failed"
        assert result["step"] == "find ClusterIssuer"
        assert result["reason"] == "ClusterIssuer no-such-issuer not found"


def test_never_issued_times_out_naming_the_step(leaf_fault: LeafFault, run_check: RunCheck) -> None:
    with leaf_fault(Fault.NEVER, BROKEN):
        report = run_check("--cert-manager-step-timeout", "3s")
    broken = result_of(report, BROKEN)
    assert broken["outcome"] == "timeout"
    assert broken["step"] == "issue leaf certificate"
    assert broken["reason"].startswith("step 'issue leaf certificate' did not finish within 3s (last seen: ")
    assert result_of(report, HEALTHY)["outcome"] == "passed"


def test_failed_issuance_fails_at_once_with_the_condition(leaf_fault: LeafFault, run_check: RunCheck) -> None:
    with leaf_fault(Fault.FAIL, BROKEN):
        report = run_check("--cert-manager-step-timeout", "60s")
    broken = result_of(report, BROKEN)
    assert broken["outcome"] == "failed"
    assert broken["step"] == "issue leaf certificate"
    assert broken["reason"].startswith(
        "Certificate sample-cert was not issued: Issuing=False (Failed): The certificate request has failed"
    )
    # Detected from the condition, not by waiting out the step.
    leaf_step = next(step for step in broken["steps"] if step["name"] == "issue leaf certificate")
    assert leaf_step["duration_seconds"] < 60
    assert result_of(report, HEALTHY)["outcome"] == "passed"


@pytest.mark.parametrize(
    ("fault", "reason_start"),
    [
        (Fault.WRONG_DNS_NAMES, "leaf certificate's SAN has DNS names ["),
        (Fault.EXPIRED, "leaf certificate expired at "),
        (Fault.NOT_YET_VALID, "leaf certificate is not valid yet: notBefore is "),
    ],
)
def test_bad_leaf_certificate_fails_verification(
    leaf_fault: LeafFault, run_check: RunCheck, fault: Fault, reason_start: str
) -> None:
    with leaf_fault(fault, BROKEN):
        report = run_check()
    broken = result_of(report, BROKEN)
    assert broken["outcome"] == "failed"
    assert broken["step"] == "verify leaf certificate"
    assert broken["reason"].startswith(reason_start), broken["reason"]
    if fault is Fault.WRONG_DNS_NAMES:
        namespace = broken["facts"]["namespace"]
        assert broken["reason"].endswith(
            f"but expected ['sample', 'sample.{namespace}.svc', 'sample.{namespace}.svc.cluster.local']"
        )
        assert "'wrong.sandbox.invalid'" in broken["reason"]
    assert result_of(report, HEALTHY)["outcome"] == "passed"


def test_sigterm_mid_check_cleans_up_both_clusters(
    sandbox: Sandbox, leaf_fault: LeafFault, nothing_left: Callable[[], None], tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    argv = [sys.executable, "-m", "kibertas_async", "run", "cert-manager", "--kubeconfig", str(sandbox.kubeconfig)]
    argv += ["--clusters", "sandbox-1,sandbox-2", "--log-format", "json", "--report-json", str(report_path)]
    with leaf_fault(Fault.NEVER, "sandbox-1"), leaf_fault(Fault.NEVER, "sandbox-2"):
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        waiting: set[str] = set()
        # Signal once both clusters are inside the wait for the leaf: namespace, CA and Issuer exist.
        for line in process.stderr:
            event = json.loads(line) if line.startswith("{") else {}
            if event.get("event") == "step.started" and event.get("step") == "issue leaf certificate":
                waiting.add(event["cluster"])
                if len(waiting) == 2:
                    break
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["interrupted_by"] == "SIGTERM"
    for cluster in ("sandbox-1", "sandbox-2"):
        assert result_of(report, cluster)["step"] == "issue leaf certificate"
    nothing_left()


def test_cluster_issuer_not_ready_fails_first_step(sandbox: Sandbox, run_check: RunCheck) -> None:
    # A CA ClusterIssuer whose Secret does not exist: the real controller marks it not Ready.
    path = CLUSTER_ISSUERS.path()
    api = sandbox.cluster(BROKEN).api()
    manifest = {
        "apiVersion": CLUSTER_ISSUERS.api_version,
        "kind": CLUSTER_ISSUERS.kind,
        "metadata": {"name": "broken-ca"},
    }
    api.create(path, {**manifest, "spec": {"ca": {"secretName": "no-such-secret"}}})
    try:
        _wait_until(lambda: condition(api.get(f"{path}/broken-ca"), "Ready") is not None)
        report = run_check("--cert-manager-cluster-issuer", "broken-ca")
    finally:
        api.request("DELETE", f"{path}/broken-ca")
    broken = result_of(report, BROKEN)
    assert broken["outcome"] == "failed"
    assert broken["step"] == "find ClusterIssuer"
    assert broken["reason"].startswith("ClusterIssuer broken-ca is not ready: Ready=False (ErrGetKeyPair): ")
    assert "no-such-secret" in broken["reason"]
    assert result_of(report, HEALTHY)["reason"] == "ClusterIssuer broken-ca not found"


def _wait_until(ready: Callable[[], bool], timeout: float = 60.0) -> None:
    """A readiness probe for the synchronous sandbox client (which has no watch)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
