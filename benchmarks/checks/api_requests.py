"""P4, Kubernetes API requests per check against the fewest it could make (goal: actual <= 2x minimum).

Usage: .venv/bin/python benchmarks/checks/api_requests.py [--repeat 2]

Starts a one-cluster sandbox (every installed plugin's add-ons) in a temporary directory and runs each
built-in check alone, ``--repeat`` times. The actual requests are the client's own count, by verb, from
the ``check.finished`` event (``api_requests_by_verb``: ``GET`` one object, ``LIST`` a page, ``WATCH``,
``POST``, ``PATCH``, ``DELETE``; a watch counts once however long it streams; retries count). The
minimum is :data:`MINIMUM`, derived by hand from each check's code: the check's writes (creates, patches,
and its cleanup's deletes), one watch per wait, and the one-shot reads it cannot do without; the
reasoning is written beside each figure. Prints a Markdown table of actual / minimum.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fan_out_clusters import bench_sandbox, kibertas_run, load_line, measured_run

if TYPE_CHECKING:
    from kibertas_async.sandbox.runner import Sandbox


@dataclass(frozen=True)
class Minimum:
    """The fewest requests one check needs on one cluster, and why."""

    writes: int
    """Creates, patches and deletes: what the check must change, its cleanup included."""
    waits: int
    """Things it must wait for in the cluster: one watch each (opened from "now", no list before it)."""
    reads: int
    """One-shot reads nothing else gives (a Secret's data, the add-on's version)."""
    reasoning: str

    @property
    def total(self) -> int:
        return self.writes + self.waits + self.reads


VERSION = "its add-on's version (one list of the add-on's workload kind)"
"""Every built-in check reports the version of the add-on it tests (``report_addon_version``): one read
would do when the kind is known; the lookup lists Deployments and then DaemonSets, as the option does not
say which kind it is."""

MINIMUM: dict[str, Minimum] = {
    "cert-manager": Minimum(
        writes=8,
        waits=6,
        reads=2,
        reasoning="POST Namespace, CA Certificate, Issuer, leaf Certificate, and cleanup's DELETE of each (the "
        "Secrets cert-manager makes go with the namespace); waits: CA Certificate Ready, its Secret has "
        "tls.crt, Issuer Ready, leaf Certificate Ready, its Secret, the namespace gone; reads: GET the "
        f"ClusterIssuer, {VERSION}",
    ),
    "cluster-autoscaler": Minimum(
        writes=4,
        waits=3,
        reads=1,
        reasoning="POST Namespace and the probe Deployment, cleanup's DELETE of both; waits: the node group's "
        "nodes (from before the Deployment, so no joining node is missed), the probe pods Ready, the namespace "
        f"gone; reads: {VERSION}. Not counted: the Events watch, which only explains a slow scale-up, and the "
        "PATCH that raises replicas when a node not counted recovers (rare)",
    ),
    "karpenter": Minimum(
        writes=4,
        waits=4,
        reads=2,
        reasoning="as cluster-autoscaler, plus a NodeClaims watch (the claim for the new node); reads: LIST "
        f"NodePools (is Karpenter served, does the pool exist), {VERSION}",
    ),
    "datadog-agent": Minimum(
        writes=0,
        waits=0,
        reads=1,
        reasoning=f"the metrics are asked of Datadog, not of Kubernetes; reads: {VERSION}",
    ),
    "fluent": Minimum(
        writes=4,
        waits=2,
        reads=2,
        reasoning="POST Namespace and the log generator Deployment, cleanup's DELETE of both; waits: the "
        "Deployment Ready, the namespace gone (the marker is looked for in S3, not in Kubernetes); reads: LIST "
        f"the spot nodes (the replica count), {VERSION}",
    ),
    "ingress": Minimum(
        writes=8,
        waits=3,
        reads=2,
        reasoning="POST Namespace, Deployment, Service, Ingress, and cleanup's DELETE of each; waits: the "
        "Deployment Ready, the Ingress's load-balancer address, the namespace gone (DNS and HTTP are polled "
        f"outside Kubernetes); reads: {VERSION} twice (the ingress controller, external-dns)",
    ),
}
"""Per built-in check, derived from its code (``plugins/*/kibertas_async_*/check*.py``) on a passing run."""


def one_check(check: str, sandbox: Sandbox, repeat: int) -> list[tuple[int, Counter[str]]]:
    """``repeat`` runs of ``check`` alone: (exit code, requests by verb) each."""
    found = []
    for _ in range(repeat):
        measured = measured_run(kibertas_run(sandbox, ["bench-1"], check))
        finished = [e for e in measured.events if e["event"] == "check.finished" and e.get("check") == check]
        if len(finished) != 1:
            sys.exit(f"{check}: no check.finished event (exit {measured.code}):\n{measured.stderr[-3000:]}")
        event = finished[0]
        if event["outcome"] != "passed":
            print(f"  {check}: {event['outcome']} {event.get('reason', '')}", flush=True)
        found.append((measured.code, Counter(event.get("api_requests_by_verb") or {})))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("checks", nargs="*", help="default: every installed check")
    args = parser.parse_args()
    print(load_line("start"), flush=True)
    checks = args.checks
    if not checks:
        listed = subprocess.run(
            [sys.executable, "-m", "kibertas_async", "list", "--json"], capture_output=True, text=True, check=True
        )
        checks = [row["name"] for row in json.loads(listed.stdout)["checks"]]
    results: dict[str, list[tuple[int, Counter[str]]]] = {}
    with bench_sandbox(["bench-1"]) as sandbox:
        for check in checks:
            results[check] = one_check(check, sandbox, args.repeat)
            print(f"  {check}: {[dict(sorted(c.items())) for _, c in results[check]]}", flush=True)
    print(f"\n| check | actual by verb (last run) | actual (median of {args.repeat}) | minimum | actual ÷ minimum |")
    print("|---|---|---|---|---|")
    for check, runs in results.items():
        actual = statistics.median(sum(counts.values()) for _, counts in runs)
        verbs = ", ".join(f"{verb} {n}" for verb, n in sorted(runs[-1][1].items()))
        minimum = MINIMUM.get(check)
        if minimum is None:
            print(f"| {check} | {verbs} | {actual:g} | (not derived) | |")
            continue
        shown = f"{minimum.total} ({minimum.writes} writes + {minimum.waits} waits + {minimum.reads} reads)"
        ratio = f"{actual / minimum.total:.2f}" if minimum.total else "-"
        print(f"| {check} | {verbs} | {actual:g} | {shown} | {ratio} |")
    print("\n| check | minimum | why |")
    print("|---|---|---|")
    for check in results:
        if check in MINIMUM:
            print(f"| {check} | {MINIMUM[check].total} | {MINIMUM[check].reasoning} |")
    print(load_line("end"))


if __name__ == "__main__":
    main()
