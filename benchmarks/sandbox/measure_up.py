"""Measure a warm ``sandbox up`` (binaries already built) and the memory of the running sandbox.

Usage: ``.venv/bin/python benchmarks/sandbox/measure_up.py [--runs 5] [--clusters 2] [--settle 30] [--core-only]``

For each run: start a sandbox in a fresh temporary state directory and time it until every API
server answers /readyz, the default ServiceAccount exists and every kwok node is Ready (what
``kibertas-async sandbox up`` waits for); then read VmRSS of every sandbox process from
/proc/PID/status, once right away and once after ``--settle`` idle seconds; then stop it. Prints one
line per run and the medians. By default every add-on ``sandbox up`` would start runs (kwok, then those
the installed plugins register); ``--core-only`` measures etcd, the control planes and kwok alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from kibertas_async.sandbox.addons.kwok import KwokAddon
from kibertas_async.sandbox.runner import Sandbox, SandboxConfig, numbered_cluster_names


def rss_kib(sandbox: Sandbox) -> dict[str, int]:
    """VmRSS in KiB of every sandbox process, by process name."""
    sizes = {}
    for process in sandbox.processes():
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes[process.spec.name] = int(line.split()[1])
    return sizes


def measure_once(clusters: int, settle: float, core_only: bool) -> tuple[float, int, int, dict[str, int]]:
    """Start, time, weigh and stop one sandbox; return (seconds to ready, RSS now, RSS settled, per process)."""
    with tempfile.TemporaryDirectory(prefix="kibertas-sandbox-bench-") as work:
        config = SandboxConfig(
            cluster_names=numbered_cluster_names(clusters),
            state_dir=Path(work) / "state",
            kubeconfig=Path(work) / "kubeconfig",
        )
        if core_only:
            config = dataclasses.replace(config, addons=(KwokAddon(),))
        started = time.monotonic()
        sandbox = Sandbox.start(config, die_with_parent=True)
        try:
            elapsed = time.monotonic() - started
            at_ready = sum(rss_kib(sandbox).values())
            time.sleep(settle)  # idle on purpose: memory after the start-up burst has settled
            settled = rss_kib(sandbox)
        finally:
            sandbox.down()
    return elapsed, at_ready, sum(settled.values()), settled


def main() -> None:
    """Run the measurement and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--settle", type=float, default=30.0, help="idle seconds before the second RSS reading")
    parser.add_argument("--core-only", action="store_true", help="no add-ons but kwok")
    args = parser.parse_args()
    times, ready_rss, settled_rss = [], [], []
    per_process: dict[str, int] = {}
    for run in range(1, args.runs + 1):
        elapsed, at_ready, settled, per_process = measure_once(args.clusters, args.settle, args.core_only)
        times.append(elapsed)
        ready_rss.append(at_ready)
        settled_rss.append(settled)
        print(
            f"run {run}: ready in {elapsed:.2f}s; RSS {at_ready / 1024:.0f} MiB at ready, "
            f"{settled / 1024:.0f} MiB after {args.settle:.0f}s",
            flush=True,
        )
    print(f"median time to ready ({args.clusters} clusters): {statistics.median(times):.2f}s")
    print(f"median RSS at ready: {statistics.median(ready_rss) / 1024:.0f} MiB")
    print(f"median RSS settled:  {statistics.median(settled_rss) / 1024:.0f} MiB")
    print("last run, settled, per process (MiB):")
    for name, size in sorted(per_process.items()):
        print(f"  {name:36} {size / 1024:6.0f}")


if __name__ == "__main__":
    main()
