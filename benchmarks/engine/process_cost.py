"""CPU and peak memory of one kibertas-async process, per command (issue 12: "halve both").

Usage: .venv/bin/python benchmarks/engine/process_cost.py [--repeat 3] [--source DIR ...]

Starts a one-cluster sandbox with every installed plugin's add-ons, then runs, ``--repeat`` times for each
``--source`` (a checkout whose code, core and plugins, the process imports through PYTHONPATH; default:
this one; sources alternate so machine load hits them alike): ``--version``, ``list``, ``run CHECK`` for
every built-in check, and ``run --all``, each on ``sandbox-1``. Per process: user+system CPU seconds and
peak RSS, from ``os.wait4`` of that one child (not the sandbox's processes, which the check drives), with
bytecode compiled once beforehand as for an installed package.
The reference tool (one Go process per check) used about 0.1 s of CPU and 33 MiB per check.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_path(source: Path) -> str:
    """The source's core and its plugins' packages, ahead of whatever is installed."""
    plugins = sorted((source / "plugins").glob("kibertas-async-*"))
    return os.pathsep.join([str(source), *(str(path) for path in plugins)])


def measure(source: Path, args: list[str]) -> tuple[float, float, int]:
    """(CPU seconds, peak RSS in MB, exit code) of one ``python -m kibertas_async ARGS`` from ``source``."""
    # Bytecode is written and reused, as for an installed package (pip compiles it at install time; the
    # Job image too): with PYTHONDONTWRITEBYTECODE set, an editable checkout recompiles ~90 modules from
    # source in every process, which is most of its CPU.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = python_path(source)
    # python -m puts the working directory first on sys.path, before PYTHONPATH: run from the source.
    child = subprocess.Popen(
        [sys.executable, "-m", "kibertas_async", *args],
        cwd=source,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, child.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source", type=Path, action="append", default=None)
    args = parser.parse_args()
    sources = [path.resolve() for path in (args.source or [ROOT])]
    from kibertas_async.sandbox import Sandbox, SandboxConfig

    print(f"load average at start: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as work:
        state = Path(work) / "state"
        config = SandboxConfig(cluster_names=("sandbox-1",), state_dir=state, kubeconfig=Path(work) / "kubeconfig")
        sandbox = Sandbox.start(config, die_with_parent=True)
        try:
            listed = subprocess.run(
                [sys.executable, "-m", "kibertas_async", "list", "--json"], capture_output=True, text=True, check=True
            )
            checks = [row["name"] for row in json.loads(listed.stdout)["checks"]]
            target = ["--clusters", "sandbox-1", "--kubeconfig", str(sandbox.kubeconfig)]
            target += ["--config", str(state / "kibertas-async.yaml"), "--no-summary", "--log-format", "json"]
            commands = [["--version"], ["list"], *(["run", check, *target] for check in checks)]
            commands.append(["run", "--all", *target])
            rows: dict[tuple[str, Path], list[tuple[float, float, int]]] = {}
            for source in sources:  # untimed: writes each source's bytecode
                measure(source, commands[-1])
            for _ in range(args.repeat):
                for command in commands:
                    label = " ".join(command[:2])
                    for source in sources:
                        rows.setdefault((label, source), []).append(measure(source, command))
        finally:
            sandbox.down()
    print(f"load average at end: {' '.join(f'{value:.1f}' for value in os.getloadavg())}\n")
    header = " | ".join(f"{source.name or source}: CPU / peak RSS" for source in sources)
    print(f"| command | {header} |")
    print("|---|" + "---|" * len(sources))
    for label in dict.fromkeys(label for label, _source in rows):
        cells = []
        for source in sources:
            runs = rows[(label, source)]
            cpu = statistics.median(run[0] for run in runs)
            rss = max(run[1] for run in runs)
            codes = sorted({run[2] for run in runs})
            cells.append(f"{cpu:.2f}s / {rss:.0f} MB" + ("" if codes == [0] else f" (exit {codes})"))
        print(f"| `{label}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
