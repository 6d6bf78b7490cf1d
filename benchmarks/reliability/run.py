"""The long reliability runs (issue 8): R1 signals, R2 SIGKILL + cleanup, R8 soak, on a 2-cluster sandbox.

Usage:
    .venv/bin/python benchmarks/reliability/run.py signals --runs 20 --seed 8   # R1
    .venv/bin/python benchmarks/reliability/run.py sigkill --runs 10 --seed 8   # R2
    .venv/bin/python benchmarks/reliability/run.py soak --runs 30               # R8

Starts its own sandbox (every installed plugin's add-ons) in a temporary directory and stops it at the
end. Every run is ``kibertas-async run --all --clusters sandbox-1,sandbox-2`` with the sandbox's run
config. What is left behind is what ``kibertas-async cleanup --dry-run`` (the real sweep over every
labelled kind) would delete, so the leftover count is measured by the tool users would run.

- signals: SIGTERM or SIGINT (alternating) at a seeded random moment between 0.5 s and 15 s: the exit
  code must be 143/130, the report must say what ran, and 0 labelled objects may be left.
- sigkill: SIGKILL at a seeded random moment, then ``kibertas-async cleanup --run-id``: afterwards 0
  labelled objects, or the cleanup lists each with its finalizers.
- soak: runs back to back: outcomes, leftovers, and the open file descriptors and RSS of every sandbox
  process, first run against last.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLUSTERS = "sandbox-1,sandbox-2"


@dataclass
class Env:
    kubeconfig: Path
    config: Path
    work: Path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "kibertas_async", *args]


def start_run(env: Env, run_id: str, report: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cli(
            "run",
            "--all",
            "--clusters",
            CLUSTERS,
            "--kubeconfig",
            str(env.kubeconfig),
            "--config",
            str(env.config),
            "--run-id",
            run_id,
            "--report-json",
            str(report),
            "--no-summary",
            "--log-format",
            "json",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def leftovers(env: Env, run_id: str | None = None) -> list[str]:
    """What ``cleanup --dry-run`` would delete: one line per labelled object still there."""
    args = ["cleanup", "--dry-run", "--clusters", CLUSTERS, "--kubeconfig", str(env.kubeconfig)]
    if run_id:
        args += ["--run-id", run_id]
    done = subprocess.run(cli(*args), capture_output=True, text=True, check=False)
    return [line for line in done.stdout.splitlines() if "would delete" in line]


def sweep(env: Env, run_id: str) -> tuple[int, str]:
    args = ["cleanup", "--clusters", CLUSTERS, "--kubeconfig", str(env.kubeconfig), "--run-id", run_id]
    done = subprocess.run(cli(*args), capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def signals(env: Env, runs: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for index in range(runs):
        signum = signal.SIGTERM if index % 2 == 0 else signal.SIGINT
        moment = round(rng.uniform(0.5, 15.0), 2)
        run_id = f"r1-{seed}-{index}"
        report = env.work / f"{run_id}.json"
        process = start_run(env, run_id, report)
        time.sleep(moment)
        sent = process.poll() is None
        if sent:
            process.send_signal(signum)
        _, err = process.communicate(timeout=600)
        expected = {signal.SIGTERM: 143, signal.SIGINT: 130}[signum] if sent else 0
        data = json.loads(report.read_text()) if report.exists() else {}
        left = leftovers(env, run_id)
        rows.append(
            {
                "run": index,
                "signal": signum.name if sent else "(finished first)",
                "at_s": moment,
                "exit": process.returncode,
                "exit_ok": process.returncode == expected,
                "report_results": len(data.get("results", [])),
                "interrupted_by": data.get("interrupted_by"),
                "left": len(left),
                "traceback": "Traceback" in err.decode(errors="replace"),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def sigkill(env: Env, runs: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for index in range(runs):
        moment = round(rng.uniform(0.5, 15.0), 2)
        run_id = f"r2-{seed}-{index}"
        process = start_run(env, run_id, env.work / f"{run_id}.json")
        time.sleep(moment)
        killed = process.poll() is None
        if killed:
            process.kill()
        process.communicate(timeout=600)
        before = leftovers(env, run_id)
        code, output = sweep(env, run_id)
        deadline = time.monotonic() + 120
        after = leftovers(env, run_id)
        while after and time.monotonic() < deadline:  # namespaces take a moment to go
            time.sleep(2)
            after = leftovers(env, run_id)
        rows.append(
            {
                "run": index,
                "killed_at_s": moment if killed else "(finished first)",
                "left_by_kill": len(before),
                "cleanup_exit": code,
                "left_after_cleanup": len(after),
                "listed_with_finalizers": sum("finalizer" in line for line in output.splitlines()),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def sandbox_usage(sandbox: Any) -> dict[str, tuple[int, int]]:
    """Per sandbox process: (open file descriptors, RSS in KiB)."""
    usage = {}
    for process in sandbox.processes():
        if process.pid is None:
            continue
        try:
            fds = len(os.listdir(f"/proc/{process.pid}/fd"))
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            continue
        rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        usage[process.spec.name] = (fds, rss)
    return usage


def soak(env: Env, runs: int, sandbox: Any) -> dict[str, Any]:
    rows, usage = [], []
    for index in range(runs):
        run_id = f"r8-{index}"
        report = env.work / f"{run_id}.json"
        started = time.perf_counter()
        process = start_run(env, run_id, report)
        process.communicate(timeout=900)
        wall = time.perf_counter() - started
        data = json.loads(report.read_text())
        not_passed = [
            f"{r['cluster']}/{r['check']} {r['outcome']}: {r['reason']}"
            for r in data["results"]
            if r["outcome"] not in ("passed", "skipped")
        ]
        rows.append({"run": index, "exit": process.returncode, "wall_s": round(wall, 1), "not_passed": not_passed})
        rows[-1]["left"] = len(leftovers(env, run_id))
        usage.append(sandbox_usage(sandbox))
        rows[-1]["sandbox_fds"] = sum(fds for fds, _ in usage[-1].values())
        rows[-1]["sandbox_rss_mib"] = round(sum(rss for _, rss in usage[-1].values()) / 1024)
        print(json.dumps(rows[-1]), flush=True)
    first, last = usage[0], usage[-1]
    growth = {
        name: {"fds": [first[name][0], last[name][0]], "rss_kib": [first[name][1], last[name][1]]}
        for name in sorted(set(first) & set(last))
    }
    return {
        "runs": rows,
        "flakes": sum(1 for row in rows if row["exit"] != 0),
        "left": sum(row["left"] for row in rows),
        "wall_median_s": statistics.median(row["wall_s"] for row in rows),
        "sandbox_processes_first_vs_last": growth,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("signals", "sigkill", "soak"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here too")
    args = parser.parse_args()
    from kibertas_async.sandbox import Sandbox, SandboxConfig

    with tempfile.TemporaryDirectory() as work:
        state = Path(work) / "state"
        sandbox = Sandbox.start(
            SandboxConfig(state_dir=state, kubeconfig=Path(work) / "kubeconfig"), die_with_parent=True
        )
        try:
            env = Env(sandbox.kubeconfig, state / "kibertas-async.yaml", Path(work))
            result: Any
            if args.mode == "signals":
                result = signals(env, args.runs, args.seed)
            elif args.mode == "sigkill":
                result = sigkill(env, args.runs, args.seed)
            else:
                result = soak(env, args.runs, sandbox)
            print(json.dumps(result, indent=2))
            if args.out:
                args.out.write_text(json.dumps(result, indent=2) + "\n")
        finally:
            sandbox.down()


if __name__ == "__main__":
    main()
