"""R1 and R2, short: ``run --all`` on two sandbox clusters with every installed check, interrupted at
seeded random moments. SIGTERM/SIGINT: exit 143/130, the report says what ran, nothing with our labels
is left. SIGKILL: ``kibertas-async cleanup --run-id`` then removes every labelled object the run left.

The long versions (20 signals, 10 kills) are ``benchmarks/reliability/run.py``; its figures are in
``benchmarks/reliability/RESULTS.md``. These tests use a sandbox of their own, so a killed run's
half-done node scale-up cannot leak into other tests.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kibertas_async.sandbox.addons.discovery import RUN_CONFIG_NAME
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import start_test_sandbox

SEED = 8
CLUSTERS = "sandbox-1,sandbox-2"
rng = random.Random(SEED)
SIGNAL_MOMENTS = [(signal.SIGTERM, round(rng.uniform(1.0, 8.0), 2)), (signal.SIGINT, round(rng.uniform(1.0, 8.0), 2))]
KILL_AFTER_FIRST_OBJECT = round(rng.uniform(0.0, 5.0), 2)
"""SIGKILL this long after the run's first ``object.created`` event (so there is something to sweep)."""


@pytest.fixture(scope="module")
def own_sandbox(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> Iterator[Sandbox]:
    """A second two-cluster sandbox for these tests alone (the ``sandbox`` fixture proves the binaries)."""
    started = start_test_sandbox(tmp_path_factory.mktemp("interrupts-sandbox"))
    try:
        yield started
    finally:
        started.down()


def _cli(sandbox: Sandbox, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "kibertas_async",
        *args,
        "--clusters",
        CLUSTERS,
        "--kubeconfig",
        str(sandbox.kubeconfig),
    ]


def _run_all(sandbox: Sandbox, run_id: str, report: Path) -> subprocess.Popen[str]:
    args = ["run", "--all", "--config", str(sandbox.state_dir / RUN_CONFIG_NAME), "--run-id", run_id]
    return subprocess.Popen(
        [*_cli(sandbox, *args), "--report-json", str(report), "--log-format", "json", "--no-summary"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _leftovers(sandbox: Sandbox, run_id: str) -> list[str]:
    listed = subprocess.run(
        _cli(sandbox, "cleanup", "--dry-run", "--run-id", run_id), capture_output=True, text=True, check=False
    )
    return [line for line in listed.stdout.splitlines() if "would delete" in line]


@pytest.mark.parametrize(("signum", "moment"), SIGNAL_MOMENTS, ids=[s.name for s, _ in SIGNAL_MOMENTS])
def test_a_signal_at_a_random_moment_leaves_nothing(
    own_sandbox: Sandbox, tmp_path: Path, signum: signal.Signals, moment: float
) -> None:
    run_id = f"r1-{signum.name.lower()}-{SEED}"
    report = tmp_path / "report.json"
    process = _run_all(own_sandbox, run_id, report)
    assert process.stderr is not None
    # The moment counts from the engine's start, not the process's: on a loaded machine start-up alone
    # can take seconds, and a signal then is the early-signal case (tests/engine/test_early_signal.py).
    seen = []
    for line in process.stderr:
        seen.append(line)
        if '"run.started"' in line:
            break
    time.sleep(moment)
    assert process.poll() is None, "the run ended before the signal: pick an earlier moment"
    process.send_signal(signum)
    _, rest = process.communicate(timeout=300)
    err = "".join(seen) + rest
    assert process.returncode == {signal.SIGTERM: 143, signal.SIGINT: 130}[signum], err[-3000:]
    assert "Traceback" not in err
    assert report.is_file(), f"no report after {signum.name}:\n{err[-3000:]}"
    data = json.loads(report.read_text())
    assert data["interrupted_by"] == signum.name
    assert len(data["results"]) == 2 * len(data["checks"]), "every cluster x check is in the report"
    for result in data["results"]:
        assert result["reason"] or result["outcome"] in ("passed", "skipped"), result
        assert all(item["status"] == "done" for item in result["cleanup"]), result["cleanup"]
    assert _leftovers(own_sandbox, run_id) == []


def test_after_sigkill_cleanup_removes_everything_the_run_left(own_sandbox: Sandbox, tmp_path: Path) -> None:
    run_id = f"r2-kill-{SEED}"
    process = _run_all(own_sandbox, run_id, tmp_path / "report.json")
    assert process.stderr is not None
    for line in process.stderr:  # the JSON event stream, as it happens
        if '"object.created"' in line:
            break
    else:
        pytest.fail(f"the run ended (exit {process.wait()}) before creating anything")
    time.sleep(KILL_AFTER_FIRST_OBJECT)
    assert process.poll() is None
    process.kill()
    process.communicate(timeout=60)
    left_by_kill = _leftovers(own_sandbox, run_id)
    assert left_by_kill, "a run killed mid-way leaves objects (or this test proves nothing)"
    swept = subprocess.run(
        _cli(own_sandbox, "cleanup", "--run-id", run_id), capture_output=True, text=True, check=False
    )
    assert "Traceback" not in swept.stderr
    deadline = time.monotonic() + 120
    while (remaining := _leftovers(own_sandbox, run_id)) and time.monotonic() < deadline:
        time.sleep(2)
    if remaining:  # what could not go must be listed with its finalizers
        assert swept.returncode == 1
        for line in remaining:
            name = line.split("would delete ", 1)[1].split(" (")[0]
            assert name in swept.stdout + swept.stderr and "finalizers" in swept.stdout + swept.stderr
    else:
        assert swept.returncode == 0, swept.stdout + swept.stderr
