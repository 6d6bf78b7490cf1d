"""The ingress check against the sandbox: it passes on both clusters at once, and breaks as it should.

Every test goes through the real CLI (the kit's ``check_runner``) and reads the JSON report; the
``run_ingress`` fixture then asserts that nothing labelled by any run is left in either cluster.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import dns.name
import dns.query
import dns.tsigkeyring
import dns.update

from kibertas_async import Outcome
from kibertas_async.kube import ClusterTarget, Informer, KubeClient, KubeObject, connect
from kibertas_async.kube.resources import DEPLOYMENTS, ENDPOINTSLICES, INGRESSES, Resource
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import TEST_CLUSTER_NAMES
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner, RunResult
from kibertas_async_ingress.sandbox import Zone, load_zone

RunIngress = Callable[..., RunResult]
"""The ``run_ingress`` fixture (see conftest.py): the ingress check through the kit's ``check_runner``."""


def test_passes_on_both_clusters_at_once(run_ingress: RunIngress, sandbox: Sandbox, passing_steps: list[str]) -> None:
    run = run_ingress()
    assert run.code == 0, run.report_json
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.PASSED, result
        assert [step.name for step in result.steps] == passing_steps
        zone = load_zone(sandbox.cluster(cluster).directory)
        address = result.facts["load balancer"]
        assert address.endswith(f".elb.{zone.name}")  # class alb: a host name, as an ALB publishes
        assert result.facts["dns"].startswith(f"ingress-check.{zone.name} -> {address} -> 127.")
        assert result.facts["http"] == f"GET http://ingress-check.{zone.name}/ -> 200"
        seconds, requests = result.duration, result.api_requests
        print(f"\n{cluster}: ingress passed in {seconds:.2f}s with {requests} API requests")
    first, second = (run.result(c).facts["load balancer"] for c in ("sandbox-1", "sandbox-2"))
    assert first != second


def test_without_dns_http_goes_straight_to_the_load_balancer(run_ingress: RunIngress, passing_steps: list[str]) -> None:
    run = run_ingress("--ingress-skip-dns")
    assert run.code == 0, run.report_json
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert [step.name for step in result.steps] == [s for s in passing_steps if s != "resolve host"]
        assert "dns" not in result.facts
        assert result.facts["http"] == f"GET http://ingress-check.{cluster}.sandbox.test/ -> 200"


def test_unexpected_status_names_what_answered(run_ingress: RunIngress) -> None:
    run = run_ingress("--ingress-expected-status", "204", "--ingress-http-timeout", "2s", clusters=["sandbox-2"])
    result = run.result("sandbox-2")
    assert result.outcome is Outcome.FAILED
    assert result.step == "http request"
    assert result.reason.startswith("GET http://ingress-check.sandbox-2.sandbox.test/ answered 200 OK (")
    address = result.facts["dns"].rpartition(" -> ")[2]  # the address the load balancer's name resolved to
    assert f"from {address} port 80, expected 204, for 2s; Service " in result.reason
    assert result.reason.endswith("/sample has 1 ready of 1 endpoints in 1 EndpointSlice(s)")


def test_no_load_balancer_address(run_ingress: RunIngress, sandbox: Sandbox) -> None:
    # sandbox-1: a class that exists but no controller serves; sandbox-2: a class that does not exist.
    api = sandbox.cluster("sandbox-1").api()
    api.create(
        "/apis/networking.k8s.io/v1/ingressclasses",
        {"metadata": {"name": "traefik"}, "spec": {"controller": "traefik.io/ingress-controller"}},
    )
    try:
        classes = {"sandbox-1": {"ingress-class": "traefik"}, "sandbox-2": {"ingress-class": "missing"}}
        run = run_ingress("--ingress-address-timeout", "3s", settings=classes)
    finally:
        api.request("DELETE", "/apis/networking.k8s.io/v1/ingressclasses/traefik")
    assert run.code == 1
    served_by_nobody, missing = run.result("sandbox-1"), run.result("sandbox-2")
    for result in (served_by_nobody, missing):
        assert result.outcome is Outcome.FAILED
        assert result.step == "wait for load balancer"
        assert "got no load-balancer address within 3s" in result.reason
    assert (
        "the controller of IngressClass traefik (traefik.io/ingress-controller) did not give it one"
        in served_by_nobody.reason
    )
    assert "IngressClass missing does not exist" in missing.reason


def test_dns_record_missing(run_ingress: RunIngress, sandbox: Sandbox) -> None:
    # external-dns excludes unmanaged.<zone>: the Ingress is served, but its host is never published.
    zone = load_zone(sandbox.cluster("sandbox-1").directory)
    host = f"missing.{zone.unmanaged}"
    run = run_ingress("--ingress-hostname", host, "--ingress-dns-timeout", "3s", clusters=["sandbox-1"])
    result = run.result("sandbox-1")
    assert result.outcome is Outcome.FAILED
    assert result.step == "resolve host"
    assert result.reason.startswith(f"{host} did not resolve to the load balancer (k8s-")
    assert f"via {zone.nameserver} within 3s: {host} does not exist (NXDOMAIN from {zone.nameserver})" in result.reason


def test_dns_record_pointing_elsewhere(run_ingress: RunIngress, sandbox: Sandbox) -> None:
    zone = load_zone(sandbox.cluster("sandbox-1").directory)
    host = f"elsewhere.{zone.unmanaged}"
    with dns_record(zone, host, "127.0.0.99"):
        run = run_ingress("--ingress-hostname", host, "--ingress-dns-timeout", "3s", clusters=["sandbox-1"])
    result = run.result("sandbox-1")
    assert result.outcome is Outcome.FAILED
    assert result.step == "resolve host"
    address = result.facts["load balancer"]
    assert f": {host} -> 127.0.0.99, not to the load balancer ({address})" in result.reason


def test_http_503_without_ready_endpoints(run_ingress: RunIngress, sandbox: Sandbox) -> None:
    # kwok makes every pod Ready, so the backend is taken away for real instead: while external-dns is
    # frozen (the check waits in "resolve host"), the Deployment is scaled to zero and the real
    # EndpointSlice controller empties the Service's slices; then external-dns publishes the host.
    cluster = sandbox.cluster("sandbox-1")
    external_dns = cluster.processes["external-dns"]
    external_dns.pause()
    disruptor = ScaleToZeroOnAddress(cluster.kubeconfig, on_done=external_dns.resume)
    disruptor.start()
    try:
        run = run_ingress("--ingress-http-timeout", "3s", clusters=["sandbox-1"])
    finally:
        external_dns.resume()
        disruptor.join(timeout=60)
    assert disruptor.error is None
    result = run.result("sandbox-1")
    assert result.outcome is Outcome.FAILED
    assert result.step == "http request"
    assert "GET http://ingress-check.sandbox-1.sandbox.test/ answered 503 Service Unavailable" in result.reason
    assert result.reason.endswith(
        f"expected 200, for 3s; Service {disruptor.namespace}/sample has 0 ready of 0 endpoints in 1 EndpointSlice(s)"
    )


def test_two_clusters_sharing_a_host_name_is_refused(run_ingress: RunIngress) -> None:
    run = run_ingress(
        "--ingress-hostname", "ingress-check.sandbox-1.sandbox.test", "--ingress-skip-dns", "--ingress-skip-http"
    )
    refused = [r for r in run.results if r.step == "check options"]
    assert len(refused) == 1
    assert refused[0].outcome is Outcome.FAILED
    assert "host name ingress-check.sandbox-1.sandbox.test is also checked on cluster sandbox-" in refused[0].reason
    others = [r for r in run.results if r is not refused[0]]
    assert [r.outcome for r in others] == [Outcome.PASSED]


def test_sigterm_mid_check_leaves_nothing_behind(
    sandbox: Sandbox, check_runner: CheckRunner, nothing_left: NothingLeft
) -> None:
    # Hosts nobody publishes keep both clusters waiting in "resolve host" until the signal arrives.
    overrides = {
        name: {"ingress-hostname": f"never.{load_zone(sandbox.cluster(name).directory).unmanaged}"}
        for name in TEST_CLUSTER_NAMES
    }
    with check_runner.start("ingress", settings=overrides) as running:
        for name in TEST_CLUSTER_NAMES:
            anyio.run(_wait_for_ingress_address, sandbox.cluster(name).kubeconfig)
        running.send_signal(signal.SIGTERM)
        run = running.wait(timeout=120)
    assert run.code == 143, run.err[-3000:]
    assert "Traceback" not in run.err
    nothing_left()


async def _wait_for_ingress_address(kubeconfig: Path) -> None:
    with anyio.fail_after(120):
        async with await connect(ClusterTarget("sandbox", kubeconfig=str(kubeconfig))) as client:
            await _first(client, INGRESSES, None, "kibertas-async/check=ingress", lambda i: bool(_address(i)))


@contextmanager
def dns_record(zone: Zone, host: str, address: str) -> Iterator[None]:
    """An A record written straight into BIND with the zone's TSIG key (RFC 2136), removed afterwards."""
    keyring = dns.tsigkeyring.from_text({zone.key_name: (zone.key_algorithm, zone.key_secret)})

    def send(change: Callable[[dns.update.UpdateMessage], object]) -> None:
        update = dns.update.UpdateMessage(
            zone.name + ".", keyring=keyring, keyname=dns.name.from_text(zone.key_name), keyalgorithm=zone.key_algorithm
        )
        change(update)
        response = dns.query.tcp(update, zone.address, port=zone.port, timeout=5)
        assert response.rcode() == 0, response

    send(lambda update: update.replace(host + ".", 5, "A", address))
    try:
        yield
    finally:
        send(lambda update: update.delete(host + "."))


class ScaleToZeroOnAddress(threading.Thread):
    """In its own thread and event loop: once the check's Ingress has an address, scale its Deployment to
    zero, wait (by watch) until the Service's EndpointSlices list no ready endpoint, then ``on_done``."""

    def __init__(self, kubeconfig: Path, on_done: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._kubeconfig = kubeconfig
        self._on_done = on_done
        self.namespace = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            anyio.run(self._disrupt)
        except BaseException as error:
            self.error = error

    async def _disrupt(self) -> None:
        with anyio.fail_after(120):
            async with await connect(ClusterTarget("sandbox-1", kubeconfig=str(self._kubeconfig))) as client:
                ingress = await _first(
                    client, INGRESSES, None, "kibertas-async/check=ingress", lambda i: bool(_address(i))
                )
                self.namespace = ingress["metadata"]["namespace"]
                await client.patch(DEPLOYMENTS, "sample", {"spec": {"replicas": 0}}, self.namespace)
                await _first(
                    client, ENDPOINTSLICES, self.namespace, "kubernetes.io/service-name=sample", _without_ready_endpoint
                )
        self._on_done()


def _address(ingress: KubeObject) -> list[object]:
    return list(((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])


def _without_ready_endpoint(endpoint_slice: KubeObject) -> bool:
    endpoints = endpoint_slice.get("endpoints") or []
    return not any((e.get("conditions") or {}).get("ready") is not False for e in endpoints)


async def _first(
    client: KubeClient, resource: Resource, namespace: str | None, selector: str, until: Callable[[KubeObject], bool]
) -> KubeObject:
    """The first object matching ``selector`` that satisfies ``until``, followed by an informer until one does."""
    informer = Informer(client, resource, namespace, label_selector=selector)

    def satisfying() -> list[KubeObject]:
        return [obj for obj in informer.objects.values() if until(obj)]

    async with anyio.create_task_group() as group:
        await group.start(informer.run)
        await informer.wait_until(lambda _informer: bool(satisfying()))
        found = satisfying()[0]
        group.cancel_scope.cancel()
    return found
