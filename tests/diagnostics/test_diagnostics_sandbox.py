"""Failure diagnostics on the sandbox's real API servers: each built-in check broken as its plugin's suite
breaks it, and the diagnostics name the cause; a plugin's own source shows up, a broken one is a plugin
problem and a hanging one delays nothing; a secret planted in the cluster never comes out; cleanup is
done in every case.

The sandbox's kwok pods serve no logs, and its ingress controller, external-dns and cert-manager are
host processes, not workloads: the diagnostics say so instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kibertas_async import Outcome
from kibertas_async.diagnostics import MAX_DIAGNOSTICS, MAX_LINE_CHARS, MAX_LINES
from kibertas_async.events import REDACTED
from kibertas_async.results import CheckResult, Diagnostic
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner, RunResult
from kibertas_async.testing.workloads import daemonset_on_no_node
from kibertas_async_chatwork.message import format_message
from tests.diagnostics.extra_plugin import EXTRA_SOURCE

BROKEN = "sandbox-1"
EXTRA = "tests.diagnostics.extra_plugin"
BROKEN_HOOK = "tests.diagnostics.broken_hook_plugin"


def _find(result: CheckResult, prefix: str) -> Diagnostic:
    found = [d for d in result.diagnostics if d.source.startswith(prefix)]
    assert found, f"no diagnostic from {prefix!r}: {[(d.source, d.title) for d in result.diagnostics]}"
    return found[0]


def _assert_bounded_and_cleaned_up(run: RunResult, result: CheckResult) -> None:
    for diagnostic in result.diagnostics:  # shown with -s: what an SRE would read
        print(f"\n{diagnostic.source} | {diagnostic.title}", *(f"    {line}" for line in diagnostic.lines), sep="\n")
    assert 0 < len(result.diagnostics) <= MAX_DIAGNOSTICS
    for diagnostic in result.diagnostics:
        assert len(diagnostic.lines) <= MAX_LINES
        assert all(len(text) <= MAX_LINE_CHARS for text in [diagnostic.source, diagnostic.title, *diagnostic.lines])
    assert all(item.status == "done" for item in result.cleanup), result.cleanup
    (written,) = [r for r in run.report_json["results"] if r["cluster"] == result.cluster]  # type: ignore[index]
    assert [set(item) for item in written["diagnostics"]] == [{"source", "title", "lines"}] * len(result.diagnostics)
    diagnosed = [e for e in run.events_named("check.diagnosed") if e.get("cluster") == result.cluster]
    assert len(diagnosed) == 1 and len(diagnosed[0]["diagnostics"]) == len(result.diagnostics)


def test_ingress_without_a_load_balancer_shows_the_ingress_as_last_seen_and_plugins_take_part(
    check_runner: CheckRunner, sandbox: Sandbox, nothing_left: NothingLeft
) -> None:
    """An IngressClass no controller serves (the ingress suite's ``test_no_load_balancer_address``), with a
    plugin whose sources add one diagnostic, raise, and never return, and one whose hook raises."""
    api = sandbox.cluster(BROKEN).api()
    api.create(
        "/apis/networking.k8s.io/v1/ingressclasses",
        {"metadata": {"name": "traefik"}, "spec": {"controller": "traefik.io/ingress-controller"}},
    )
    try:
        run = check_runner.run(
            "ingress",
            "--plugin",
            EXTRA,
            "--plugin",
            BROKEN_HOOK,
            "--ingress-address-timeout",
            "3s",
            "--cleanup-timeout",
            "60s",
            clusters=[BROKEN],
            settings={BROKEN: {"ingress-class": "traefik"}},
        )
    finally:
        api.request("DELETE", "/apis/networking.k8s.io/v1/ingressclasses/traefik")
    result = run.result(BROKEN)
    assert result.outcome is Outcome.FAILED, result
    assert result.step == "wait for load balancer"

    waited = result.diagnostics[0]  # the most telling: the object the failing step watched
    assert waited.source.startswith("waited on Ingress ingress-test-") and waited.source.endswith("/sample")
    assert waited.title.endswith(": no address in status.loadBalancer yet")
    assert "status.loadBalancer: {}" in waited.lines
    namespace = waited.source.removeprefix("waited on Ingress ").removesuffix("/sample")
    assert _find(result, f"events {namespace}").title  # the check's namespace: the Deployment's events
    external_dns = _find(result, "workload kube-system/external-dns")
    assert "no Deployment or DaemonSet external-dns in namespace kube-system" in external_dns.title

    extra = _find(result, EXTRA_SOURCE)
    assert extra.title == "ingress failed in step 'wait for load balancer'"
    assert extra.lines == [f"namespace {namespace}"]
    problems = {(p.plugin, p.hook) for p in run.report.plugin_problems}  # type: ignore[union-attr]
    assert problems == {
        (EXTRA, "diagnostics 'raises-in-collect' collect"),
        (BROKEN_HOOK, "kibertas_async_register_diagnostics"),
    }
    # The source that never returns was cut off by the time box: cleanup ran in full all the same.
    _assert_bounded_and_cleaned_up(run, result)
    message = format_message(run.report)  # type: ignore[arg-type]
    assert f"  why: {waited.source}: " in message
    nothing_left(run)


@contextlib.contextmanager
def _planted_event(sandbox: Sandbox, namespace: str, kind: str, name: str, message: str) -> Iterator[None]:
    event_name = f"planted-{secrets.token_hex(4)}"
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name, "namespace": namespace},
        "involvedObject": {"kind": kind, "name": name, "namespace": namespace},
        "reason": "PlantedSecret",
        "message": message,
        "type": "Warning",
        "firstTimestamp": "2026-12-01T00:00:00Z",
        "lastTimestamp": "2099-01-01T00:00:00Z",  # the latest warning, whatever else happens
        "source": {"component": "tests"},
    }
    kubectl(sandbox, BROKEN, "create", "-f", "-", input=json.dumps(event))
    try:
        yield
    finally:
        kubectl(sandbox, BROKEN, "-n", namespace, "delete", "event", event_name, "--ignore-not-found", check=False)


def test_datadog_agent_stopped_names_its_daemonset_and_planted_secrets_never_appear(
    check_runner: CheckRunner, sandbox: Sandbox, nothing_left: NothingLeft
) -> None:
    from kibertas_async_datadog.sandbox import AGENT_NAMESPACE, api_key_for
    from kibertas_async_datadog.standin import AGENT_NAME

    api_key = api_key_for(BROKEN)  # a secret option the run knows (the sandbox's settings)
    token = f"planted-{secrets.token_hex(12)}"  # a key in the environment (*_TOKEN)
    bearer = f"eyJ{secrets.token_hex(16)}.x1"  # a credential no option names
    message = f"agent config: api_key={api_key} auth={token} header Authorization: Bearer {bearer}"
    with (
        daemonset_on_no_node(sandbox, BROKEN, AGENT_NAMESPACE, AGENT_NAME),
        _planted_event(sandbox, AGENT_NAMESPACE, "DaemonSet", AGENT_NAME, message),
    ):
        run = check_runner.run(
            "datadog-agent", "--datadog-wait-timeout", "5s", clusters=[BROKEN], env={"DIAG_PLANTED_TOKEN": token}
        )
    result = run.result(BROKEN)
    assert result.outcome is Outcome.FAILED, result
    workload = _find(result, f"workload {AGENT_NAMESPACE}/{AGENT_NAME}")
    assert f"DaemonSet {AGENT_NAMESPACE}/{AGENT_NAME}: 0/0 pods ready" in workload.title
    assert 'nodeSelector {"kibertas-async.test/no-such-node": "true"} matches no node' in workload.title
    assert _find(result, f"log {AGENT_NAMESPACE}/{AGENT_NAME}").title == f"no logs: {AGENT_NAME} has no pods"
    events = _find(result, f"events {AGENT_NAMESPACE} ({AGENT_NAME})")
    assert "latest PlantedSecret on DaemonSet/" in events.title
    assert f"api_key={REDACTED} auth={REDACTED} header Authorization: Bearer {REDACTED}" in events.title
    _assert_bounded_and_cleaned_up(run, result)
    everything = "\n".join([run.out, run.err, json.dumps(run.report_json), format_message(run.report)])  # type: ignore[arg-type]
    for planted in (api_key, token, bearer):
        assert planted not in everything
    nothing_left(run)


def test_datadog_agent_running_on_kwok_says_its_pods_serve_no_logs(
    check_runner: CheckRunner, nothing_left: NothingLeft
) -> None:
    """A rejected key (the datadog suite's ``test_bad_keys_fail_at_once_without_retrying``): the agent is
    up, so its pods are there, and kwok's pods answer no ``pods/log``."""
    from kibertas_async_datadog.sandbox import AGENT_NAMESPACE
    from kibertas_async_datadog.standin import AGENT_NAME

    run = check_runner.run("datadog-agent", "--datadog-api-key", "not-the-sandbox-key", clusters=[BROKEN])
    result = run.result(BROKEN)
    assert result.outcome is Outcome.FAILED, result
    workload = _find(result, f"workload {AGENT_NAMESPACE}/{AGENT_NAME}")
    assert f"DaemonSet {AGENT_NAMESPACE}/{AGENT_NAME}: " in workload.title and "pods ready" in workload.title
    log = _find(result, f"log {AGENT_NAMESPACE}/{AGENT_NAME}-")  # one of its pods
    assert log.title.startswith("no logs: pods/log answered 404 NotFound: "), log
    _assert_bounded_and_cleaned_up(run, result)
    nothing_left(run)


def test_cert_manager_never_issuing_times_out_showing_the_certificate_it_waited_on(
    check_runner: CheckRunner, sandbox: Sandbox, nothing_left: NothingLeft
) -> None:
    from kibertas_async_cert_manager.sandbox.faults import Fault, issuer_fault

    with issuer_fault(sandbox.cluster(BROKEN), Fault.NEVER):
        run = check_runner.run("cert-manager", "--cert-manager-step-timeout", "3s", clusters=[BROKEN])
    result = run.result(BROKEN)
    assert result.outcome is Outcome.TIMEOUT, result
    assert result.step == "issue leaf certificate"
    namespace = result.facts["namespace"]
    waited = result.diagnostics[0]
    assert waited.source == f"waited on Certificate {namespace}/sample-cert"
    step = next(s for s in result.steps if s.name == "issue leaf certificate")
    assert waited.title == f"Certificate {namespace}/sample-cert: {step.detail}"
    assert waited.lines[0].startswith("resourceVersion ")
    assert any(line.startswith(("Ready=", "Issuing=", "no status")) for line in waited.lines), waited.lines
    cert_manager = _find(result, "workload cert-manager/cert-manager")
    assert "no Deployment or DaemonSet cert-manager in namespace cert-manager" in cert_manager.title
    _assert_bounded_and_cleaned_up(run, result)
    nothing_left(run)


@pytest.mark.parametrize("outcome", [Outcome.PASSED])
def test_a_passing_check_carries_none(check_runner: CheckRunner, outcome: Outcome) -> None:
    run = check_runner.run("cert-manager", clusters=["sandbox-2"])
    result = run.result("sandbox-2")
    assert result.outcome is outcome
    assert result.diagnostics == []
    assert run.events_named("check.diagnosed") == []


def test_a_role_without_the_diagnostics_grants_gets_a_line_saying_so_never_a_failure(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The datadog-agent check's generated role without ``list events`` and ``get pods/log``, run as that
    service account with a rejected key: the check fails for its own reason and the diagnostics say
    which grant was missing."""
    from kibertas_async.rbac import merge, rbac_manifests
    from kibertas_async.sandbox.addons.discovery import RUN_CONFIG_NAME
    from kibertas_async_datadog.check import DatadogAgentCheck
    from kibertas_async_datadog.sandbox import AGENT_NAMESPACE
    from kibertas_async_datadog.standin import AGENT_NAME
    from tests.rbac.access import NAMESPACE, Identity, apply, run_report, token, wait_until_authorizer
    from tests.rbac.access import write_kubeconfig as write_identities
    from tests.rbac.walk import grants_of, without

    cluster = sandbox.cluster(BROKEN)
    account = "diagnostics-without-grants"
    dropped = {("", "events", "list"), ("", "pods/log", "get")}
    kept = [grant for grant in grants_of(DatadogAgentCheck) if grant not in dropped]
    documents = rbac_manifests(
        merge(without(kept, None)), [DatadogAgentCheck.name], namespace=NAMESPACE, service_account=account
    )
    apply(sandbox, cluster, json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
    try:
        wait_until_authorizer(cluster, account, "list", "", "pods", allowed=True)
        identity = Identity(account, cluster, account, token(sandbox, cluster, account))
        kubeconfig = write_identities(tmp_path / "kubeconfig", [identity])
        settings = yaml.safe_load((sandbox.state_dir / RUN_CONFIG_NAME).read_text())["clusters"][BROKEN]
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"defaults": {**settings, "datadog-api-key": "rejected-key-0001"}}))
        _, report = run_report(kubeconfig, [account], config, tmp_path / "report.json", DatadogAgentCheck.name)
    finally:
        for kind in ("clusterrolebinding", "clusterrole"):
            kubectl(sandbox, cluster, "delete", kind, "--ignore-not-found", account, check=False)
        kubectl(sandbox, cluster, "delete", "serviceaccount", "-n", NAMESPACE, account, check=False)
    (result,) = report["results"]
    assert result["outcome"] == "failed", result
    assert report["plugin_problems"] == []
    by_source = {item["source"]: item for item in result["diagnostics"]}
    events = by_source[f"events {AGENT_NAMESPACE} ({AGENT_NAME})"]
    assert events["title"].startswith(f"not allowed to list events in {AGENT_NAMESPACE} (403): "), events
    assert 'cannot list resource "events"' in events["title"]
    (log,) = [item for key, item in by_source.items() if key.startswith(f"log {AGENT_NAMESPACE}/{AGENT_NAME}-")]
    assert log["title"].startswith("no logs: pods/log answered 403 Forbidden: "), log
    assert 'cannot get resource "pods/log"' in log["title"]


@contextlib.contextmanager
def _autoscaler_disabled(sandbox: Sandbox) -> Iterator[None]:
    """The cluster-autoscaler suite's ``sandbox_autoscaler(enabled="false")``, on one cluster."""
    from kibertas_async_cluster_autoscaler.sandbox.config import CONFIGMAP_NAME, CONFIGMAP_NAMESPACE

    def patch(value: str | None) -> None:
        body = json.dumps({"data": {"enabled": value}})
        kubectl(
            sandbox, BROKEN, "-n", CONFIGMAP_NAMESPACE, "patch", "configmap", CONFIGMAP_NAME, "--type=merge", "-p", body
        )

    before = sandbox.cluster(BROKEN).api().get(f"/api/v1/namespaces/{CONFIGMAP_NAMESPACE}/configmaps/{CONFIGMAP_NAME}")
    patch("false")
    try:
        yield
    finally:
        patch((before.get("data") or {}).get("enabled"))


def test_cluster_autoscaler_absent_shows_the_pending_pods_and_the_schedulers_events(
    check_runner: CheckRunner, sandbox: Sandbox, nothing_left: NothingLeft
) -> None:
    with _autoscaler_disabled(sandbox):
        run = check_runner.run("cluster-autoscaler", "--scale-up-timeout", "6s", clusters=[BROKEN])
    result = run.result(BROKEN)
    assert result.outcome is Outcome.TIMEOUT, result
    assert result.step == "wait for scale-up"
    pending = [d for d in result.diagnostics if d.source.startswith("pod ") and d.title.startswith("Pending: ")]
    assert pending, result.diagnostics
    assert "PodScheduled=False (Unschedulable): 0/4 nodes are available: " in pending[0].title
    events = next(d for d in result.diagnostics if d.source.startswith("events "))
    assert "latest FailedScheduling on Pod/" in events.title, events
    _assert_bounded_and_cleaned_up(run, result)
    nothing_left(run)
