"""The cert-manager check against the sandbox: passes on both clusters at once, and fails precisely.

cert-manager's real controller (v1.21.2, our own ``main``) issues here unless the sandbox was started with
``$KIBERTAS_ASYNC_CERT_MANAGER_CONTROLLER=stand-in``. Each failure is made on ``sandbox-1`` only (an
option, its controller stopped, or a misissue of the stand-in while the real controller is paused), while
``sandbox-2`` runs the same check at the same time and must still pass. A real cert-manager cannot be made
to issue an expired, not-yet-valid or misnamed leaf for the check's own Certificates (it signs what they
ask for, 90 days from now; the 1 h minimum duration is the webhook's, but the check sets no duration), so
those three failures are the stand-in's.
"""

from __future__ import annotations

import base64
import contextlib
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kibertas_async import Outcome
from kibertas_async.results import CheckResult
from kibertas_async.sandbox.api import ApiError, SandboxApi
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner, RunResult
from kibertas_async.testing.waiting import eventually
from kibertas_async_cert_manager.resources import CLUSTER_ISSUERS, condition
from kibertas_async_cert_manager.sandbox.addon import CONTROLLER_PROCESS, ISSUER_PROCESS, use_real_controller
from kibertas_async_cert_manager.sandbox.issuer import Fault

RunCheck = Callable[..., RunResult]
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


def _window(result: CheckResult) -> tuple[datetime, datetime]:
    return result.started_at, result.started_at + timedelta(seconds=result.duration)


def test_passes_on_both_clusters_concurrently(sandbox: Sandbox, run_check: RunCheck) -> None:
    # The real cert-manager controller issues here; the stand-in stays dormant without a fault.
    if not use_real_controller():
        pytest.skip("the sandbox runs the stand-in alone ($KIBERTAS_ASYNC_CERT_MANAGER_CONTROLLER=stand-in)")
    for cluster in ("sandbox-1", "sandbox-2"):
        assert sandbox.cluster(cluster).processes[CONTROLLER_PROCESS].is_alive()
    run = run_check()
    assert run.report is not None and run.report.ok, run.results
    first, second = run.result("sandbox-1"), run.result("sandbox-2")
    for result in (first, second):
        assert result.outcome is Outcome.PASSED, result
        assert [step.name for step in result.steps] == STEPS
        namespace = result.facts["namespace"]
        assert result.facts["leaf"].startswith(f"sample, sample.{namespace}.svc, sample.{namespace}.svc.cluster.local")
        assert result.facts["ca"].startswith("CN=sample-ca (ECDSA P-256")
        assert result.facts["leaf_issuer"] == "CN=sample-ca"
        assert result.api_requests > 0
    (start_1, end_1), (start_2, end_2) = _window(first), _window(second)
    assert start_1 < end_2 and start_2 < end_1, "the two clusters were not checked at the same time"


def test_leaf_key_algorithm_option(run_check: RunCheck) -> None:
    run = run_check("--cert-manager-leaf-key-algorithm", "ecdsa")
    assert run.report is not None and run.report.ok, run.results
    assert "(ECDSA P-256," in run.result("sandbox-1").facts["leaf"]


def test_missing_cluster_issuer_fails_first_step(run_check: RunCheck) -> None:
    run = run_check("--cert-manager-cluster-issuer", "no-such-issuer")
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.FAILED
        assert result.step == "find ClusterIssuer"
        assert result.reason == "ClusterIssuer no-such-issuer not found"


def test_stopped_controller_times_out_issuing_the_ca(sandbox: Sandbox, run_check: RunCheck) -> None:
    # SIGSTOP: the controller is still a process but does nothing, as if its pod were gone. With the
    # stand-in alone, the stand-in is the controller that stops.
    issuing = sandbox.cluster(BROKEN).processes[CONTROLLER_PROCESS if use_real_controller() else ISSUER_PROCESS]
    issuing.pause()
    try:
        run = run_check("--cert-manager-step-timeout", "10s")
    finally:
        issuing.resume()
    broken = run.result(BROKEN)
    assert broken.outcome is Outcome.TIMEOUT
    assert broken.step == "issue CA certificate"
    # Nothing acted on the Certificate: it has no condition at all.
    assert broken.reason == "step 'issue CA certificate' did not finish within 10s (last seen: no Ready condition yet)"
    assert run.result(HEALTHY).outcome is Outcome.PASSED


def test_never_issued_times_out_naming_the_step(leaf_fault: LeafFault, run_check: RunCheck) -> None:
    with leaf_fault(Fault.NEVER, BROKEN):
        run = run_check("--cert-manager-step-timeout", "3s")
    broken = run.result(BROKEN)
    assert broken.outcome is Outcome.TIMEOUT
    assert broken.step == "issue leaf certificate"
    assert broken.reason.startswith("step 'issue leaf certificate' did not finish within 3s (last seen: ")
    assert run.result(HEALTHY).outcome is Outcome.PASSED


def test_failed_issuance_fails_at_once_with_the_condition(leaf_fault: LeafFault, run_check: RunCheck) -> None:
    with leaf_fault(Fault.FAIL, BROKEN):
        run = run_check("--cert-manager-step-timeout", "60s")
    broken = run.result(BROKEN)
    assert broken.outcome is Outcome.FAILED
    assert broken.step == "issue leaf certificate"
    assert broken.reason.startswith(
        "Certificate sample-cert was not issued: Issuing=False (Failed): The certificate request has failed"
    )
    # Detected from the condition, not by waiting out the step.
    leaf_step = next(step for step in broken.steps if step.name == "issue leaf certificate")
    assert leaf_step.duration < 60
    assert run.result(HEALTHY).outcome is Outcome.PASSED


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
        run = run_check()
    broken = run.result(BROKEN)
    assert broken.outcome is Outcome.FAILED
    assert broken.step == "verify leaf certificate"
    assert broken.reason.startswith(reason_start), broken.reason
    if fault is Fault.WRONG_DNS_NAMES:
        namespace = broken.facts["namespace"]
        assert broken.reason.endswith(
            f"but expected ['sample', 'sample.{namespace}.svc', 'sample.{namespace}.svc.cluster.local']"
        )
        assert "'wrong.sandbox.invalid'" in broken.reason
    assert run.result(HEALTHY).outcome is Outcome.PASSED


def test_sigterm_mid_check_cleans_up_both_clusters(
    check_runner: CheckRunner, leaf_fault: LeafFault, nothing_left: NothingLeft
) -> None:
    with (
        leaf_fault(Fault.NEVER, "sandbox-1"),
        leaf_fault(Fault.NEVER, "sandbox-2"),
        check_runner.start("cert-manager", clusters=["sandbox-1", "sandbox-2"]) as running,
    ):
        waiting: set[str] = set()
        # Signal once both clusters are inside the wait for the leaf: namespace, CA and Issuer exist.
        for event in running.events():
            if event.get("event") == "step.started" and event.get("step") == "issue leaf certificate":
                waiting.add(event["cluster"])
                if len(waiting) == 2:
                    break
        running.send_signal(signal.SIGTERM)
        run = running.wait(timeout=120)
    assert run.code == 143, run.err
    assert run.report is not None
    assert run.report.interrupted_by == "SIGTERM"
    for cluster in ("sandbox-1", "sandbox-2"):
        assert run.result(cluster).step == "issue leaf certificate"
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
        eventually("broken-ca's Ready condition", lambda: condition(api.get(f"{path}/broken-ca"), "Ready"), timeout=60)
        run = run_check("--cert-manager-cluster-issuer", "broken-ca")
    finally:
        api.request("DELETE", f"{path}/broken-ca")
    broken = run.result(BROKEN)
    assert broken.outcome is Outcome.FAILED
    assert broken.step == "find ClusterIssuer"
    assert broken.reason.startswith("ClusterIssuer broken-ca is not ready: Ready=False (ErrGetKeyPair): ")
    assert "no-such-secret" in broken.reason
    assert run.result(HEALTHY).reason == "ClusterIssuer broken-ca not found"


def test_ca_reissued_mid_check_is_verified_again_and_reported(
    sandbox: Sandbox, check_runner: CheckRunner, nothing_left: NothingLeft
) -> None:
    """cert-manager re-issues the CA (a new key: ``rotationPolicy: Always``) after the check verified it
    and before the CA Issuer signs the leaf, as its trigger controller does when a lagging cache shows it
    the CA's Secret missing. The leaf then chains to the new CA only: the check verifies that CA, checks the
    leaf against it, passes and says so. The re-issue is what ``cmctl renew`` asks for (the Certificate's
    ``Issuing`` condition set to True), made while the run is stopped (SIGSTOP) so that it lands first."""
    if not use_real_controller():
        pytest.skip("the stand-in issuer does not re-issue on an Issuing condition")
    api = sandbox.cluster(BROKEN).api()
    with check_runner.start("cert-manager", clusters=[BROKEN, HEALTHY]) as running:
        for event in running.events():
            if event.get("event") == "step.started" and (event["cluster"], event["step"]) == (
                BROKEN,
                "create CA Issuer",
            ):
                break
        running.send_signal(signal.SIGSTOP)
        try:
            (ca,) = [item for item in _certificates(api) if item["metadata"]["name"] == "sample-ca"]
            namespace = ca["metadata"]["namespace"]
            assert not [item for item in _certificates(api, namespace) if item["metadata"]["name"] == "sample-cert"]
            before = _ca_certificate(api, namespace)
            eventually("the re-issue asked", lambda: _renew(api, namespace, "sample-ca"))
            eventually(
                "the CA re-issued",
                lambda: _ca_certificate(api, namespace) not in (before, b"") and _ready(api, namespace),
                timeout=90,  # less than the step's 120 s, which run on while the run is stopped
            )
        finally:
            running.send_signal(signal.SIGCONT)
        run = running.wait(timeout=300)
    nothing_left()
    broken = run.result(BROKEN)
    assert broken.outcome is Outcome.PASSED, broken
    first_serial = broken.facts["ca"].rsplit("serial ", 1)[1].rstrip(")")
    assert broken.facts["ca_reissued"].startswith(
        f"cert-manager re-issued the CA during the check: serial {first_serial} -> "
    )
    assert not broken.facts["ca_reissued"].endswith(f"-> {first_serial}")
    assert "ca_reissued" not in run.result(HEALTHY).facts
    assert run.result(HEALTHY).outcome is Outcome.PASSED


def _certificates(api: SandboxApi, namespace: str | None = None) -> list[dict[str, Any]]:
    where = f"/namespaces/{namespace}" if namespace else ""
    items: list[dict[str, Any]] = api.get(f"/apis/cert-manager.io/v1{where}/certificates")["items"]
    return items


def _ca_certificate(api: SandboxApi, namespace: str) -> bytes:
    try:
        secret = api.get(f"/api/v1/namespaces/{namespace}/secrets/sample-ca")
    except ApiError:
        return b""
    return base64.b64decode((secret.get("data") or {}).get("tls.crt", ""))


def _ready(api: SandboxApi, namespace: str) -> bool:
    ca = api.get(f"/apis/cert-manager.io/v1/namespaces/{namespace}/certificates/sample-ca")
    ready, issuing = condition(ca, "Ready"), condition(ca, "Issuing")
    return ready is not None and ready.get("status") == "True" and issuing is None


def _renew(api: SandboxApi, namespace: str, name: str) -> bool:
    """What ``cmctl renew`` does: the ``Issuing`` condition, True, on the Certificate's status. False when
    cert-manager updated the status between our read and our write (409 Conflict): read it again, retry."""
    path = f"/apis/cert-manager.io/v1/namespaces/{namespace}/certificates/{name}"
    certificate = api.get(path)
    status = certificate.setdefault("status", {})
    status["conditions"] = [
        *(item for item in status.get("conditions") or [] if item.get("type") != "Issuing"),
        {
            "type": "Issuing",
            "status": "True",
            "reason": "ManuallyTriggered",
            "message": "re-issue asked by the test",
            "lastTransitionTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "observedGeneration": certificate["metadata"]["generation"],
        },
    ]
    try:
        api.request("PUT", f"{path}/status", certificate)
    except ApiError as error:
        if error.status == 409:
            return False
        raise
    return True
