"""The engine's concurrency and overhead, measured with synthetic checks (no cluster needed).

Runs K sleeper checks (each sleeping D seconds in one step) on C clusters: one after another the
reference tool's way would take K x C x D; the engine should take about D plus its own overhead.

Usage: .venv/bin/python benchmarks/engine/concurrency.py [--checks 6] [--clusters 2] [--delay 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC = ROOT / "tests" / "fixtures" / "plugins" / "kibertas-async-synthetic"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=6)
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--delay", type=float, default=2.0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        kubeconfig = Path(work) / "kubeconfig"
        names = [f"c{index}" for index in range(options.clusters)]
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": n, "cluster": {"server": "https://127.0.0.1:1"}} for n in names],
                    "contexts": [{"name": n, "context": {"cluster": n, "user": "u"}} for n in names],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                }
            )
        )
        report = Path(work) / "report.json"
        env = {**os.environ, "PYTHONPATH": str(SYNTHETIC), "KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD": "1"}
        checks = [f"sleeper-{index}" for index in range(1, options.checks + 1)]
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kibertas_async",
                "run",
                *checks,
                "--plugin",
                "kibertas_async_synthetic",
                "--clusters",
                ",".join(names),
                "--kubeconfig",
                str(kubeconfig),
                "--synthetic-delay",
                f"{options.delay}s",
                "--report-json",
                str(report),
                "--no-summary",
                "--log-level",
                "warning",
            ],
            env=env,
            check=True,
        )
        wall = time.perf_counter() - started
        data = json.loads(report.read_text())
    sequential = options.checks * options.clusters * options.delay
    print(f"{options.checks} checks x {options.clusters} clusters, each sleeping {options.delay:g}s")
    print(
        f"one after another: {sequential:.1f}s; kibertas-async: {wall:.2f}s wall (process start included), "
        f"{data['duration_seconds']:.2f}s run; outcomes {data['counts']}"
    )


if __name__ == "__main__":
    main()
