"""P2, fan-out on real clusters: ``run --all`` on 1, 3 and 6 sandbox clusters (goal: wall(6) / wall(1) <= 1.15).

Usage: .venv/bin/python benchmarks/checks/fan_out_clusters.py [--clusters 1 3 6] [--repeat 2] [--engine-option ...]

Starts one sandbox with as many clusters as the largest count (every installed plugin's add-ons), once,
in a temporary directory, then runs ``kibertas-async run --all --clusters`` on its first N clusters,
``--repeat`` times per N, the counts interleaved so machine load hits them alike. Per run: the whole
process's wall time (Python start-up included), the CPU time and peak RSS of that process alone
(``os.wait4``), the CPU time the sandbox's own processes (etcd, API servers, controllers, kwok, add-ons)
spent meanwhile, and how busy the machine's cores were. From the JSON events, per check (the median over
clusters and runs): when it started after ``run.started`` (a check waiting for a concurrency slot or an
exclusive lock starts late), its steps, its whole duration; and how long connecting to a cluster took.
``--engine-option`` passes engine options to every run (e.g. ``--engine-option=--concurrency=64``).

The helpers here (:func:`bench_sandbox`, :func:`kibertas_run`, :func:`measured_run`, :func:`load_line`) are
shared by the other issue-12 benchmarks of this directory. ``--raw FILE`` keeps every run's figures and
events; ``--from-raw FILE`` prints the tables again from them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exclusive_chain import at

if TYPE_CHECKING:
    from kibertas_async.sandbox.runner import Sandbox

ROOT = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    """One ``kibertas-async`` process, as it ran."""

    code: int
    wall: float
    cpu: float
    """User + system seconds of the process itself (its children, if any, included)."""
    rss_mb: float
    """Its peak resident set."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """The JSON events it wrote to stderr."""
    stderr: str = ""


def events_of(stderr: str) -> list[dict[str, Any]]:
    """The JSON events among ``stderr``'s lines."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def measured_run(command: Sequence[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``command`` (stdout discarded, stderr kept) and measure that one process with ``os.wait4``:
    ``resource.getrusage(RUSAGE_CHILDREN)`` would give the largest RSS of every child so far, not this one's."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.stderr.close()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return Measured(
        code=process.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=usage.ru_maxrss / 1024,  # kB on Linux
        events=events_of(stderr),
        stderr=stderr,
    )


def kibertas_run(sandbox: Sandbox, clusters: Sequence[str], *args: str, report: Path | None = None) -> list[str]:
    """The command of ``kibertas-async run ARGS`` on ``clusters`` of ``sandbox``, JSON events on stderr."""
    command = [sys.executable, "-m", "kibertas_async", "run", *args, "--clusters", ",".join(clusters)]
    command += ["--kubeconfig", str(sandbox.kubeconfig)]
    if sandbox.run_config.is_file():  # the add-ons' settings (none when the sandbox runs kwok only)
        command += ["--config", str(sandbox.run_config)]
    command += ["--log-format", "json", "--no-summary"]
    return command + (["--report-json", str(report)] if report is not None else [])


@contextlib.contextmanager
def bench_sandbox(names: Sequence[str], **config: Any) -> Iterator[Sandbox]:
    """A sandbox of clusters ``names`` (every installed add-on unless ``config`` says ``addons=``) in a
    temporary directory, stopped (and its directory removed) on exit, killed if this process dies."""
    from kibertas_async.sandbox.runner import Sandbox, SandboxConfig

    with tempfile.TemporaryDirectory(prefix="kibertas-async-bench-") as scratch:
        state = Path(scratch) / "state"
        sandbox = Sandbox.start(
            SandboxConfig(cluster_names=tuple(names), state_dir=state, kubeconfig=state / "kubeconfig", **config),
            die_with_parent=True,
        )
        try:
            yield sandbox
        finally:
            sandbox.down()


def process_cpu_seconds(pid: int) -> float:
    """User + system seconds of process ``pid`` so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


def sandbox_cpu_seconds(sandbox: Sandbox) -> float:
    """CPU seconds every process of ``sandbox`` has used so far."""
    return sum(process_cpu_seconds(p.pid) for p in sandbox.processes() if p.pid is not None)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


def load_line(when: str) -> str:
    """``load average at start: 1.23 0.98 0.70`` (printed beside every figure)."""
    return f"load average at {when}: " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def check_timings(events: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Per check, over its clusters: ``start`` (seconds after run.started), ``steps`` (check.started to its
    last step.finished), ``duration`` (check.started to check.finished, cleanup included)."""
    run_started = next(at(e) for e in events if e["event"] == "run.started")
    found: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if "check" in event and "cluster" in event:
            by_cell[(event["cluster"], event["check"])].append(event)
    for (_cluster, check), mine in by_cell.items():
        start = next(at(e) for e in mine if e["event"] == "check.started")
        end = next(at(e) for e in mine if e["event"] == "check.finished")
        steps = [at(e) for e in mine if e["event"] == "step.finished"]
        found[check]["start"].append(start - run_started)
        found[check]["steps"].append((max(steps) if steps else start) - start)
        found[check]["duration"].append(end - start)
    connected = [at(e) - run_started for e in events if e["event"] == "cluster.connected"]
    found["(connect to a cluster)"]["start"].extend(connected)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, nargs="+", default=[1, 3, 6])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--engine-option", action="append", default=[], help="passed to every run")
    parser.add_argument("--raw", type=Path, help="also write every run's figures and events here (JSON)")
    parser.add_argument("--from-raw", type=Path, help="print the tables of a --raw file; run nothing")
    args = parser.parse_args()
    if args.from_raw is not None:
        raw = json.loads(args.from_raw.read_text())
        report({int(n): [(Measured(**m), s, b) for m, s, b in r] for n, r in raw["runs"].items()}, raw["repeat"])
        return
    print(load_line("start"), flush=True)
    names = tuple(f"bench-{index}" for index in range(1, max(args.clusters) + 1))
    began = time.perf_counter()
    with bench_sandbox(names) as sandbox:
        print(f"sandbox of {len(names)} clusters up in {time.perf_counter() - began:.0f}s; {load_line('now')}")
        runs: dict[int, list[tuple[Measured, float, float]]] = {count: [] for count in args.clusters}
        time.sleep(10)  # let the add-ons' start-up work settle before the first measured run
        for round_number in range(args.repeat):
            for count in args.clusters:
                sandbox_before, (busy_before, total_before) = sandbox_cpu_seconds(sandbox), machine_busy_seconds()
                measured = measured_run(kibertas_run(sandbox, names[:count], "--all", *args.engine_option))
                busy_after, total_after = machine_busy_seconds()
                sandbox_cpu = sandbox_cpu_seconds(sandbox) - sandbox_before
                busy = (busy_after - busy_before) / (total_after - total_before)
                if measured.code != 0:
                    outcomes = [
                        f"{e['cluster']}/{e['check']} {e['outcome']} {e.get('reason', '')}"
                        for e in measured.events
                        if e["event"] == "check.finished" and e["outcome"] != "passed"
                    ]
                    print(f"  run {round_number + 1}, {count} clusters: exit {measured.code}: {outcomes}")
                print(
                    f"  run {round_number + 1}, {count} clusters: {measured.wall:.1f}s wall, "
                    f"{measured.cpu:.1f}s CPU, {measured.rss_mb:.0f} MB; sandbox {sandbox_cpu:.1f}s CPU; "
                    f"cores {busy:.0%} busy; {load_line('end')}",
                    flush=True,
                )
                runs[count].append((measured, sandbox_cpu, busy))
                if args.raw is not None:
                    figures = {
                        n: [({**dataclasses.asdict(m), "stderr": ""}, s, b) for m, s, b in r] for n, r in runs.items()
                    }
                    args.raw.write_text(json.dumps({"repeat": args.repeat, "runs": figures}))
    report(runs, args.repeat)
    print(load_line("end"))


def report(runs: dict[int, list[tuple[Measured, float, float]]], repeat: int) -> None:
    """Print the Markdown tables: one row per cluster count, then per check how it changes with N."""
    counts = sorted(runs)
    walls = {count: statistics.median(m.wall for m, _, _ in runs[count]) for count in counts}
    print(f"\n| clusters | wall (median of {repeat}) | ÷ wall(1) | kibertas-async CPU | peak RSS |", end="")
    print(" sandbox CPU meanwhile | cores busy |")
    print("|---|---|---|---|---|---|---|")
    for count in counts:
        measured = runs[count]
        print(
            f"| {count} | {walls[count]:.1f}s | {walls[count] / walls[counts[0]]:.2f} "
            f"| {statistics.median(m.cpu for m, _, _ in measured):.1f}s "
            f"| {max(m.rss_mb for m, _, _ in measured):.0f} MB "
            f"| {statistics.median(s for _, s, _ in measured):.1f}s "
            f"| {statistics.median(b for _, _, b in measured):.0%} |"
        )
    timings = {count: [check_timings(m.events) for m, _, _ in runs[count]] for count in counts}
    checks = sorted({check for per_run in timings.values() for t in per_run for check in t})
    print("\nper check, median over clusters and runs, seconds: started after run.started / steps / duration")
    print("| check | " + " | ".join(f"{count} clusters" for count in counts) + " |")
    print("|---|" + "---|" * len(counts))
    for check in checks:
        cells = []
        for count in counts:
            figures = {
                key: [value for t in timings[count] for value in t.get(check, {}).get(key, [])]
                for key in ("start", "steps", "duration")
            }
            cells.append(" / ".join(f"{statistics.median(v):.2f}" if v else "-" for v in figures.values()))
        print(f"| {check} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
