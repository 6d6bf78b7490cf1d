"""Each built-in check alone, then `run --all`, on a two-cluster sandbox: wall times and API requests.

Usage: .venv/bin/python benchmarks/checks/run_all.py [--repeat 3]

Starts its own sandbox (every installed plugin's add-ons) in a temporary directory and stops it at the
end. For each check: the median whole-process wall time of `kibertas-async run CHECK --clusters
sandbox-1,sandbox-2`, each cluster's check duration and `api_requests` from the JSON report. Then the
same for `run --all`, against the sum of the single checks (what a one-check-per-process tool that runs
them one after another would take at best).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run(args: list[str], kubeconfig: Path, config: Path, report: Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kibertas_async",
            "run",
            *args,
            "--clusters",
            "sandbox-1,sandbox-2",
            "--kubeconfig",
            str(kubeconfig),
            "--config",
            str(config),
            "--report-json",
            str(report),
            "--no-summary",
            "--log-level",
            "warning",
        ],
        check=False,
    )
    return time.perf_counter() - started, json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    from kibertas_async.sandbox import Sandbox, SandboxConfig

    with tempfile.TemporaryDirectory() as work:
        state = Path(work) / "state"
        sandbox = Sandbox.start(
            SandboxConfig(state_dir=state, kubeconfig=Path(work) / "kubeconfig"), die_with_parent=True
        )
        try:
            kubeconfig, config, report = sandbox.kubeconfig, state / "kibertas-async.yaml", Path(work) / "r.json"
            listed = subprocess.run(
                [sys.executable, "-m", "kibertas_async", "list", "--json"], capture_output=True, text=True, check=True
            )
            checks = [row["name"] for row in json.loads(listed.stdout)["checks"]]
            print(f"| run | wall (median of {repeat}) | outcomes | per cluster: duration, api_requests |")
            print("|---|---|---|---|")
            total = 0.0
            for check in [*checks, "--all"]:
                walls, last = [], {}
                for _ in range(repeat):
                    wall, last = run([check], kubeconfig, config, report)
                    walls.append(wall)
                median = statistics.median(walls)
                if check != "--all":
                    total += median
                outcomes = ", ".join(f"{k} {v}" for k, v in last["counts"].items() if v)
                detail = (
                    "; ".join(
                        f"{r['cluster']}/{r['check']} {r['duration_seconds']:.1f}s {r['api_requests']}"
                        for r in last["results"]
                        if check != "--all"
                    )
                    or f"run {last['duration_seconds']:.1f}s"
                )
                print(f"| `run {check}` | {median:.1f}s | {outcomes} | {detail} |")
            print(f"\nsum of the single checks' wall times: {total:.1f}s")
        finally:
            sandbox.down()


if __name__ == "__main__":
    main()
