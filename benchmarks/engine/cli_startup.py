"""How long `kibertas-async --help`, `run --help` and `list` take, with every installed plugin loaded.

Usage: .venv/bin/python benchmarks/engine/cli_startup.py [--runs 15]
Prints a Markdown table (median and min of whole-process wall times) and which heavy client modules
`list` imported (it should import none).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["run", "--help"], ["list"])
HEAVY = ("kubernetes_asyncio", "aiohttp", "aioboto3", "botocore", "dns", "datadog_api_client", "cryptography")


def measure(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kibertas_async", *args], capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return times


def heavy_imports_of_list() -> list[str]:
    code = (
        "import sys\nfrom kibertas_async.cli import main\nmain(['list'])\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    marker = next(line for line in result.stdout.splitlines() if line.startswith("HEAVY="))
    return [name for name in marker.removeprefix("HEAVY=").split(",") if name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    baseline = measure(["--version"], runs)
    print(f"python {sys.version.split()[0]}, {runs} runs each\n")
    print("| command | median | min |")
    print("|---|---|---|")
    print(
        f"| `kibertas-async --version` | {statistics.median(baseline) * 1000:.0f} ms | {min(baseline) * 1000:.0f} ms |"
    )
    for args in COMMANDS:
        times = measure(args, runs)
        shown = " ".join(args)
        print(f"| `kibertas-async {shown}` | {statistics.median(times) * 1000:.0f} ms | {min(times) * 1000:.0f} ms |")
    print(f"\nheavy client modules imported by `list`: {', '.join(heavy_imports_of_list()) or 'none'}")


if __name__ == "__main__":
    main()
