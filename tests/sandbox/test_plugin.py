"""The pytest plugin's promises: CI fails without binaries, and a killed test run leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing.waiting import eventually
from tests.sandbox.processes import live_processes

USES_SANDBOX = "def test_needs_clusters(sandbox):\n    assert len(sandbox.clusters) == 2\n"


def run_pytest(test_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``test_dir`` in a fresh interpreter; the plugin loads through its entry point."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", str(test_dir)],
        cwd=test_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def suite_without_binaries(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A one-test suite using the ``sandbox`` fixture, with the binary directory pointing at nothing."""
    (tmp_path / "test_uses_sandbox.py").write_text(USES_SANDBOX)
    empty = tmp_path / "no-binaries"
    empty.mkdir()
    env = {**os.environ, "KIBERTAS_ASYNC_SANDBOX_BIN_DIR": str(empty)}
    env.pop("CI", None)
    return tmp_path, env


def test_missing_binaries_fail_the_fixture_in_ci(suite_without_binaries: tuple[Path, dict[str, str]]) -> None:
    test_dir, env = suite_without_binaries
    result = run_pytest(test_dir, {**env, "CI": "true"})
    assert result.returncode == 1, result.stdout
    assert "1 error" in result.stdout
    assert "CI is set: sandbox binaries missing" in result.stdout


def test_missing_binaries_skip_with_instructions_outside_ci(
    suite_without_binaries: tuple[Path, dict[str, str]],
) -> None:
    test_dir, env = suite_without_binaries
    result = run_pytest(test_dir, env)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "kibertas-async sandbox build" in result.stdout


STARTS_AND_HANGS = """
import json, sys, time
from pathlib import Path
from kibertas_async.testing import start_test_sandbox
sandbox = start_test_sandbox(Path(sys.argv[1]), ("solo",))
print(json.dumps([process.pid for process in sandbox.processes()]), flush=True)
time.sleep(600)
"""


def test_a_killed_test_process_takes_every_sandbox_process_with_it(sandbox: Sandbox, tmp_path: Path) -> None:
    # ``sandbox`` is requested only so a missing build skips or fails this test like the others.
    with subprocess.Popen(
        [sys.executable, "-c", STARTS_AND_HANGS, str(tmp_path / "state")], stdout=subprocess.PIPE, text=True
    ) as owner:
        try:
            assert owner.stdout is not None
            pids = json.loads(owner.stdout.readline())
            # etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, and plugins' add-ons
            assert len(pids) >= 5
            assert len(live_processes(pids)) == len(pids)
        finally:
            owner.send_signal(signal.SIGKILL)  # no finalizer, no atexit: only the kernel can clean up
    # The deadline bounds the kernel's delivery; it is not a performance assertion.
    eventually("every sandbox process gone with its owner", lambda: live_processes(pids), lambda live: not live)
