"""P5, engine overhead: N clusters x 5 synthetic 1-second checks, no Kubernetes at all.

Usage: .venv/bin/python benchmarks/engine/fan_out.py [--clusters 200 1000] [--delay 1s] [--repeat 3]

Each cluster is a kubeconfig context whose server is never contacted (the synthetic checks declare
``needs_kubernetes = False``), so what is measured is the engine alone: planning the matrix, one task per
cluster x check, deadlines, events (JSON lines to a pipe), cleanup stacks, the report. Per cluster count:
the whole process's wall time (Python start-up and plugin loading included), that minus the checks' own
delay, user+system CPU and peak RSS of the process (``resource.getrusage`` of the child). The goal in
issue 12: 200 clusters within 1.5 s beyond the 1 s delay and under 250 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC = ROOT / "tests" / "fixtures" / "plugins" / "kibertas-async-synthetic"
CHECKS = ("sleeper-1", "sleeper-2", "sleeper-3", "sleeper-4", "sleeper-5")


def kubeconfig(path: Path, count: int) -> list[str]:
    """A kubeconfig with ``count`` contexts that point nowhere; returns their names."""
    names = [f"c{index:04d}" for index in range(count)]
    lines = ["apiVersion: v1", "kind: Config", f"current-context: {names[0]}", "clusters:"]
    lines += [f'- name: {name}\n  cluster: {{server: "https://127.0.0.1:1"}}' for name in names]
    lines.append("contexts:")
    lines += [f"- name: {name}\n  context: {{cluster: {name}, user: nobody}}" for name in names]
    lines += ["users:", "- name: nobody", "  user: {token: not-a-real-token}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return names


def one_run(count: int, delay: str, scratch: Path) -> dict[str, float]:
    config = scratch / f"kubeconfig-{count}.yaml"
    names = kubeconfig(config, count)
    # Bytecode is written and reused, as for an installed package (pip compiles it at install time):
    # with PYTHONDONTWRITEBYTECODE, a checkout recompiles ~90 modules in every process.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("KIBERTAS_ASYNC_") and key != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(PYTHONPATH=str(SYNTHETIC), KUBECONFIG=str(config))
    command = [sys.executable, "-m", "kibertas_async", "run", *CHECKS, "--plugin", "kibertas_async_synthetic"]
    command += ["--clusters", ",".join(names), "--synthetic-delay", delay, "--log-format", "json", "--no-summary"]
    command += ["--concurrency", str(count * len(CHECKS)), "--cluster-concurrency", str(len(CHECKS))]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if finished.returncode != 0:
        raise SystemExit(f"{count} clusters: exit {finished.returncode}\n{finished.stderr[-3000:]}")
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "rss_mb": after.ru_maxrss / 1024,  # the largest child so far, in kB on Linux
        "events": float(finished.stderr.count("\n")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, nargs="+", default=[1, 200, 1000])
    parser.add_argument("--delay", default="1s")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    delay_seconds = float(args.delay.rstrip("s"))
    head = f"| clusters | checks | wall (median of {args.repeat}) | beyond the {args.delay} delay | CPU |"
    print(head + " peak RSS | events |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="kibertas-async-fan-out-") as scratch:
        one_run(1, args.delay, Path(scratch))  # untimed: writes the bytecode
        for count in args.clusters:
            runs = [one_run(count, args.delay, Path(scratch)) for _ in range(args.repeat)]
            wall = statistics.median(run["wall"] for run in runs)
            cpu = statistics.median(run["cpu"] for run in runs)
            rss = max(run["rss_mb"] for run in runs)
            events = runs[0]["events"]
            print(
                f"| {count} | {count * len(CHECKS)} | {wall:.2f}s | {wall - delay_seconds:.2f}s | {cpu:.2f}s "
                f"| {rss:.0f} MB | {events:.0f} |"
            )


if __name__ == "__main__":
    main()
