"""P3, detection latency: from a condition becoming true in the API to the step waiting for it finishing.

Usage: .venv/bin/python benchmarks/checks/detection_latency.py [--rounds 60] [--settle 0.2]

Starts a one-cluster sandbox (kwok only: nothing here needs an add-on) in a temporary directory and runs
``kibertas-async run detection-latency`` as a user would (a separate process, JSON events), with this
file loaded as a plugin (``--plugin detection_latency``): the benchmark's own check, registered for this
run only. It creates a ConfigMap ``latency`` with ``data.round = "0"``, then, for each round N, waits in
its own step (``ctx.wait_for``, the list-then-watch every built-in check waits with) until ``data.round``
is N. This process follows the run's events; once the step has listed (its ``step.progress`` event) it
waits ``--settle`` seconds, so the watch is open, and patches ``data.round`` to N with its own client,
recording the time the PATCH was sent and the time its response came back (the API server's own
timestamps, managedFields', have one-second resolution). Latency = the step's ``step.finished`` event
timestamp - the PATCH's response time (the condition is true in the API by then; counting from the send
instead adds the PATCH's round trip, also shown). Both clocks are this machine's wall clock. Goal in
issue 12: p95 <= 100 ms.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kibertas_async import Check, CheckContext, Option, hookimpl
from kibertas_async.kube.resources import CONFIGMAPS
from kibertas_async.options import parse_positive_int

CHECK_NAME = "detection-latency"
CONFIGMAP = "latency"
ROUND_STEP = "wait for round "
ROUNDS = Option[int](
    "detection-rounds", "How many waits the detection-latency check does.", default=60, parse=parse_positive_int
)


def round_of(obj: dict[str, Any] | None) -> str:
    """The ConfigMap's ``data.round`` (``absent`` when it is not there)."""
    return "absent" if obj is None else str((obj.get("data") or {}).get("round", "absent"))


def reached(wanted: str, obj: dict[str, Any] | None) -> bool:
    """Whether the ConfigMap's round is ``wanted``."""
    return round_of(obj) == wanted


class DetectionLatency(Check):
    """Waits, one step per round, for a ConfigMap's ``data.round`` to reach the round's number; the
    benchmark changes it from outside."""

    name = CHECK_NAME
    description = "Benchmark only: waits for a ConfigMap the benchmark patches."
    tags = frozenset({"benchmark"})
    timeout = 900.0
    options = (ROUNDS,)
    creates = ("Namespace detection-latency-test-*", f"ConfigMap {CONFIGMAP}")

    async def run(self, ctx: CheckContext) -> None:
        namespace = await ctx.namespace()
        await ctx.create(CONFIGMAPS, {"metadata": {"name": CONFIGMAP}, "data": {"round": "0"}}, namespace)
        for number in range(1, ctx.options[ROUNDS] + 1):
            async with ctx.step(f"{ROUND_STEP}{number}", timeout=60):
                await ctx.wait_for(
                    CONFIGMAPS,
                    CONFIGMAP,
                    namespace,
                    until=functools.partial(reached, str(number)),
                    progress=lambda obj: f"round {round_of(obj)}",
                )


@hookimpl
def kibertas_async_register_checks() -> list[type[Check]]:
    """The benchmark's check (only when this file is loaded with ``--plugin detection_latency``)."""
    return [DetectionLatency]


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile, nearest rank (p95 of 60 values is the 57th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


async def measure(rounds: int, settle: float) -> None:
    import anyio
    from anyio.streams.text import TextReceiveStream
    from exclusive_chain import at
    from fan_out_clusters import ROOT, bench_sandbox, kibertas_run, load_line

    from kibertas_async.kube import ClusterTarget, connect
    from kibertas_async.sandbox.addons.kwok import KwokAddon

    print(load_line("start"), flush=True)
    with bench_sandbox(["bench-1"], addons=(KwokAddon(),)) as sandbox:
        cluster = sandbox.cluster("bench-1")
        target = ClusterTarget(cluster.name, context=cluster.context, kubeconfig=str(cluster.kubeconfig))
        command = kibertas_run(sandbox, ["bench-1"], CHECK_NAME, "--plugin", "detection_latency")
        command += ["--detection-rounds", str(rounds), "--log-level", "debug"]
        paths = [str(Path(__file__).parent), str(ROOT), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in paths if path)}
        sent: dict[int, float] = {}
        answered: dict[int, float] = {}
        finished: dict[int, float] = {}
        namespace = ""
        async with (
            await connect(target) as kube,
            await anyio.open_process(command, env=env, stdout=subprocess.DEVNULL) as run,
        ):
            assert run.stderr is not None
            buffer, tail = "", list[str]()
            async for chunk in TextReceiveStream(run.stderr):
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    tail = [*tail[-40:], line]
                    if not line.startswith("{"):
                        continue
                    event = json.loads(line)
                    kind, step = event["event"], str(event.get("step", ""))
                    if kind == "object.created" and event.get("kind") == "ConfigMap":
                        namespace = event["name"].split("/")[0]
                    elif kind == "step.progress" and step.startswith(ROUND_STEP):
                        number = int(step.removeprefix(ROUND_STEP))
                        if number not in sent:
                            await anyio.sleep(settle)
                            sent[number] = time.time()
                            await kube.patch(CONFIGMAPS, CONFIGMAP, {"data": {"round": str(number)}}, namespace)
                            answered[number] = time.time()
                    elif kind == "step.finished" and step.startswith(ROUND_STEP):
                        finished[int(step.removeprefix(ROUND_STEP))] = at(event)
            code = await run.wait()
        if code != 0 or len(finished) != rounds:
            sys.exit(f"the run ended with exit {code} after {len(finished)} rounds:\n" + "\n".join(tail))
    latencies = [(finished[n] - answered[n]) * 1000 for n in sorted(finished)]
    from_send = [(finished[n] - sent[n]) * 1000 for n in sorted(finished)]
    round_trips = [(answered[n] - sent[n]) * 1000 for n in sorted(finished)]
    print(f"\n{rounds} waits, each patched {settle:g}s after its step listed; milliseconds:")
    print("| from | p50 | p95 | max |")
    print("|---|---|---|---|")
    for label, values in (
        ("the PATCH's response (condition true in the API)", latencies),
        ("the PATCH's send", from_send),
        ("(the PATCH's own round trip)", round_trips),
    ):
        print(f"| {label} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} | {max(values):.1f} |")
    print(load_line("end"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--settle", type=float, default=0.2, help="seconds between a step's list and the patch")
    args = parser.parse_args()
    import anyio

    anyio.run(measure, args.rounds, args.settle)


if __name__ == "__main__":
    main()
