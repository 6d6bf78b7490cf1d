"""The sandbox's two load balancer shapes: class ``alb`` publishes a host name (an AWS ALB's shape), class
``nginx`` an IP address; the check passes through either, and names the load balancer's own DNS name when
that does not resolve."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import dns.message
import dns.query
import dns.rcode

from kibertas_async import Outcome
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing.runner import RunResult
from kibertas_async.testing.waiting import eventually
from kibertas_async_ingress.sandbox import Zone, load_zone
from kibertas_async_ingress.sandbox_controller import LOAD_BALANCER_DNS_ANNOTATION

RunIngress = Callable[..., RunResult]
"""The ``run_ingress`` fixture (see conftest.py): the ingress check through the kit's ``check_runner``."""


def _rcode(zone: Zone, name: str) -> str:
    response = dns.query.udp(dns.message.make_query(name + ".", "A"), zone.address, port=zone.port, timeout=2)
    return dns.rcode.to_text(response.rcode())


def test_alb_publishes_a_host_name_that_resolves_and_goes_with_the_ingress(
    run_ingress: RunIngress, sandbox: Sandbox, passing_steps: list[str]
) -> None:
    run = run_ingress()  # the sandbox's run config says ingress-class alb, as on EKS
    assert run.code == 0, run.report_json
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.PASSED, result
        assert [step.name for step in result.steps] == passing_steps
        zone = load_zone(sandbox.cluster(cluster).directory)
        load_balancer = result.facts["load balancer"]
        assert re.fullmatch(rf"k8s-ingresst-sample-[0-9a-f]{{10}}\.elb\.{re.escape(zone.name)}", load_balancer)
        # external-dns made the host a CNAME to the load balancer's name, which resolves to its address.
        match = re.fullmatch(
            rf"ingress-check\.{re.escape(zone.name)} -> {load_balancer} -> (127\.[0-9.]+)", result.facts["dns"]
        )
        assert match, result.facts["dns"]
        assert result.facts["http"] == f"GET http://ingress-check.{zone.name}/ -> 200"
        # Deleting the Ingress (the check's cleanup) deletes its load balancer, DNS name included.
        eventually(
            f"{load_balancer} gone from DNS with its Ingress",
            functools.partial(_rcode, zone, load_balancer),
            lambda rcode: rcode == "NXDOMAIN",
        )
    first, second = (run.result(c).facts["load balancer"] for c in ("sandbox-1", "sandbox-2"))
    assert first != second


def test_nginx_publishes_an_ip_address(run_ingress: RunIngress, sandbox: Sandbox, passing_steps: list[str]) -> None:
    run = run_ingress("--ingress-class", "nginx")
    assert run.code == 0, run.report_json
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.PASSED, result
        assert [step.name for step in result.steps] == passing_steps
        zone = load_zone(sandbox.cluster(cluster).directory)
        address = result.facts["load balancer"]
        assert re.fullmatch(r"127\.[0-9.]+", address), address
        assert result.facts["dns"] == f"ingress-check.{zone.name} -> {address}"
        assert result.facts["http"] == f"GET http://ingress-check.{zone.name}/ -> 200"


def test_a_load_balancer_host_name_that_does_not_resolve(run_ingress: RunIngress, sandbox: Sandbox) -> None:
    # The stand-in's fault switch: the ALB's name is published, its A record never written.
    zone = load_zone(sandbox.cluster("sandbox-1").directory)
    run = run_ingress(
        "--ingress-annotations",
        f"{LOAD_BALANCER_DNS_ANNOTATION}=absent",
        "--ingress-dns-timeout",
        "3s",
        clusters=["sandbox-1"],
    )
    assert run.code == 1
    result = run.result("sandbox-1")
    assert result.outcome is Outcome.FAILED
    assert result.step == "resolve host"
    load_balancer = result.facts["load balancer"]
    assert load_balancer.endswith(f".elb.{zone.name}")
    host = f"ingress-check.{zone.name}"
    assert result.reason.startswith(f"{host} did not resolve to the load balancer ({load_balancer}) via ")
    assert result.reason.endswith(
        f"; the load balancer's host name does not resolve either: "
        f"{load_balancer} does not exist (NXDOMAIN from {zone.nameserver})"
    )
