"""``sandbox up/status/down`` as a user runs them, and ``kubectl version`` against the result."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kibertas_async.sandbox.build import binaries_for
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION
from tests.sandbox.processes import live_processes

pytestmark = pytest.mark.sandbox


def sandbox_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kibertas_async.sandbox", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory whose sandbox is brought down even when the test fails half-way."""
    directory = tmp_path / "state"
    yield directory
    leftover = Sandbox.load(directory)
    if leftover is not None:
        leftover.down()


def test_up_status_down_round_trip_leaves_no_process(sandbox: Sandbox, state_dir: Path, tmp_path: Path) -> None:
    # ``sandbox`` (the session fixture) is requested so a missing build skips or fails like every sandbox test.
    kubeconfig = tmp_path / "kubeconfig.yaml"
    up = sandbox_command("up", "--names", "old,new", "--state-dir", str(state_dir), "--kubeconfig", str(kubeconfig))
    assert up.returncode == 0, up.stderr
    assert f"export KUBECONFIG={kubeconfig}" in up.stdout
    state = json.loads((state_dir / "state.json").read_text())
    pids = {state["etcd"]["pid"]} | {p["pid"] for c in state["clusters"] for p in c["processes"].values()}
    core = {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    assert all(core <= cluster["processes"].keys() for cluster in state["clusters"])  # plugins may add more
    assert len(live_processes(pids)) == len(pids)

    status = sandbox_command("status", "--state-dir", str(state_dir))
    assert status.returncode == 0, status.stdout
    assert "cluster old: https://127.0.0.1:" in status.stdout
    assert "cluster new: https://127.0.0.1:" in status.stdout

    version = subprocess.run(
        [str(binaries_for().kubectl), "--kubeconfig", str(kubeconfig), "--context", "new", "version", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    versions = json.loads(version.stdout)
    assert versions["clientVersion"]["gitVersion"] == f"v{DEFAULT_KUBERNETES_VERSION}"
    assert versions["serverVersion"]["gitVersion"] == f"v{DEFAULT_KUBERNETES_VERSION}"

    again = sandbox_command("up", "--state-dir", str(state_dir), "--kubeconfig", str(kubeconfig))
    assert again.returncode == 2
    assert "already running" in again.stderr

    down = sandbox_command("down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert live_processes(pids) == []
    assert not state_dir.exists()
    assert not kubeconfig.exists()
    assert sandbox_command("status", "--state-dir", str(state_dir)).returncode == 1


def test_up_refuses_to_overwrite_a_foreign_kubeconfig(state_dir: Path, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    up = sandbox_command("up", "--state-dir", str(state_dir), "--kubeconfig", str(kubeconfig))
    assert up.returncode == 2
    assert "was not written by the sandbox" in up.stderr
    assert kubeconfig.read_text() == "apiVersion: v1\nkind: Config\n"


def test_bad_cluster_names_are_a_usage_error(state_dir: Path) -> None:
    up = sandbox_command("up", "--names", "Old_Cluster", "--state-dir", str(state_dir))
    assert up.returncode == 2
    assert up.stderr.count("\n") == 1
    assert "Old_Cluster" in up.stderr


def test_a_server_that_dies_at_start_is_reported_with_its_log(state_dir: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "broken-release"
    bin_dir.mkdir()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\necho '{name}: cannot start: disk on fire' >&2\nexit 3\n")
        script.chmod(0o755)
    up = sandbox_command(
        "up", "--bin-dir", str(bin_dir), "--state-dir", str(state_dir), "--kubeconfig", str(tmp_path / "k")
    )
    assert up.returncode == 1
    assert "etcd exited (status 3)" in up.stderr
    assert "etcd: cannot start: disk on fire" in up.stderr
    assert "sandbox down" in up.stderr
    assert not (tmp_path / "k").exists()


def test_importing_the_cli_module_loads_nothing_but_the_standard_library() -> None:
    listing = "import sys, kibertas_async.sandbox.cli; print('\\n'.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, check=True).stdout.split()
    )
    ours = {name for name in loaded if name.startswith("kibertas_async")}
    assert ours <= {"kibertas_async", "kibertas_async._version", "kibertas_async.sandbox", "kibertas_async.sandbox.cli"}
    assert not loaded & {"yaml", "kubernetes_asyncio", "anyio", "pluggy", "ssl", "urllib.request"}
