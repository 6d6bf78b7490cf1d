"""Where a check's time goes after its steps: the exclusive node-count chain on one sandbox cluster.

Usage: .venv/bin/python benchmarks/checks/exclusive_chain.py [--repeat 3] [--source DIR ...]

Starts one sandbox cluster (every installed plugin's add-ons) in a temporary directory, then runs
``kibertas-async run cluster-autoscaler karpenter`` (the two checks share ``exclusive = "node-count"``, so
they run one after the other) ``--repeat`` times for each ``--source`` (a checkout whose code the run
process imports, through PYTHONPATH; default: this one), alternating sources so machine load hits them
alike. Per run, from the JSON event stream: the run's wall time, each check's steps, its undo actions
(cleanup before its namespace) and its namespace wait, and when the second check started after the
first one's start. Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

CHECKS = ("cluster-autoscaler", "karpenter")


def at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def one_run(source: Path, kubeconfig: Path, config: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    started = time.perf_counter()
    command = [sys.executable, "-m", "kibertas_async", "run", *CHECKS, "--clusters", "bench-1"]
    command += ["--kubeconfig", str(kubeconfig), "--config", str(config), "--log-format", "json", "--no-summary"]
    finished = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=source,  # python -m puts the working directory first on sys.path, before PYTHONPATH
        check=False,
    )
    wall = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"run failed (exit {finished.returncode}):\n{finished.stderr[-3000:]}")
    events = [json.loads(line) for line in finished.stderr.splitlines() if line.startswith("{")]
    figures: dict[str, float] = {"wall": wall}
    starts = {}
    for check in CHECKS:
        mine = [e for e in events if e.get("check") == check]
        start = next(at(e) for e in mine if e["event"] == "check.started")
        starts[check] = start
        last_step = max(at(e) for e in mine if e["event"] == "step.finished")
        cleanups = [e for e in mine if e["event"] == "cleanup.done"]
        undone = max((at(e) for e in cleanups if not e["action"].startswith("delete Namespace ")), default=last_step)
        gone = max(at(e) for e in cleanups)
        figures[f"{check} steps"] = last_step - start
        figures[f"{check} undo"] = undone - last_step
        figures[f"{check} namespace wait"] = gone - undone
        figures[f"{check} total"] = gone - start
    first, second = sorted(CHECKS, key=lambda check: starts[check])
    figures["second starts after"] = starts[second] - starts[first]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source", type=Path, action="append", default=None)
    args = parser.parse_args()
    sources = args.source or [Path(__file__).resolve().parents[2]]

    from kibertas_async.sandbox.runner import Sandbox, SandboxConfig

    with tempfile.TemporaryDirectory(prefix="kibertas-async-bench-") as scratch:
        state = Path(scratch) / "state"
        sandbox = Sandbox.start(
            SandboxConfig(cluster_names=("bench-1",), state_dir=state, kubeconfig=state / "kubeconfig"),
            die_with_parent=True,
        )
        try:
            figures: dict[Path, list[dict[str, float]]] = {source: [] for source in sources}
            for _ in range(args.repeat):
                for source in sources:
                    figures[source].append(one_run(source, state / "kubeconfig", sandbox.run_config))
        finally:
            sandbox.down()
    keys = list(figures[sources[0]][0])
    print(f"| figure (median of {args.repeat}, seconds) | {' | '.join(str(source) for source in sources)} |")
    print("|---|" + "---|" * len(sources))
    for key in keys:
        print(
            f"| {key} | " + " | ".join(f"{statistics.median(r[key] for r in figures[s]):.2f}" for s in sources) + " |"
        )


if __name__ == "__main__":
    main()
