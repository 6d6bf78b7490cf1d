"""``sandbox up/status/down`` as a user runs them, and ``kubectl version`` against the result."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kibertas_async.errors import UsageError
from kibertas_async.sandbox.build import SandboxBinaries, binaries_for
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.runner import STATE_DIR_MARKER, Sandbox, SandboxConfig
from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION
from tests.sandbox.processes import live_processes

pytestmark = pytest.mark.sandbox


def sandbox_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kibertas_async.sandbox", *args], capture_output=True, text=True, timeout=300
    )


def cli_command(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``kibertas-async`` console script, as a user runs it."""
    script = Path(sys.executable).with_name("kibertas-async")
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=300)


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


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--names", "Old_Cluster"], "Old_Cluster"),
        (["--names", ""], "--names is empty"),
        (["--names", "old,,new"], "--names 'old,,new' has an empty entry"),
        (["--names", "old,"], "--names 'old,' has an empty entry"),
        (["--clusters", "0"], "--clusters 0: give at least 1"),
        (["--timeout", "0"], "--timeout 0 must be a number of seconds above zero"),
        (["--timeout=-5"], "--timeout -5 must be a number of seconds above zero"),
    ],
)
def test_bad_up_arguments_are_a_usage_error_before_anything_starts(
    state_dir: Path, args: list[str], expected: str
) -> None:
    up = sandbox_command("up", *args, "--state-dir", str(state_dir))
    assert up.returncode == 2
    assert up.stderr.count("\n") == 1
    assert expected in up.stderr
    assert not state_dir.exists()


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


def _broken_release(directory: Path) -> SandboxBinaries:
    """Binaries that all exit at once, so a start gets past claiming its directories and then fails."""
    directory.mkdir()
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok"):
        script = directory / name
        script.write_text(f"#!/bin/sh\necho '{name}: cannot start' >&2\nexit 3\n")
        script.chmod(0o755)
    return SandboxBinaries.in_directory(directory)


def _start_broken(state_dir: Path, kubeconfig: Path, binaries: SandboxBinaries) -> None:
    config = SandboxConfig(cluster_names=("one",), state_dir=state_dir, kubeconfig=kubeconfig, addons=())
    with pytest.raises(SandboxError, match="etcd exited"):
        Sandbox.start(config, die_with_parent=True, binaries=binaries)


def test_up_refuses_a_state_dir_that_is_not_empty_and_not_ours(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "main.c").write_text("int main(void) { return 0; }\n")
    kubeconfig = tmp_path / "kubeconfig"
    up = cli_command("sandbox", "up", "--state-dir", str(source), "--kubeconfig", str(kubeconfig))
    assert up.returncode == 2, up.stderr
    assert up.stderr.count("\n") == 1, up.stderr
    assert up.stderr.startswith("kibertas-async: error: state directory ")
    assert "is not empty and was not made by the sandbox" in up.stderr
    assert "Traceback" not in up.stderr
    assert sorted(path.name for path in source.iterdir()) == ["main.c"]
    assert (source / "main.c").read_text() == "int main(void) { return 0; }\n"
    assert not kubeconfig.exists()


def test_up_refuses_a_state_dir_path_that_is_a_file(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "notes.txt"
    not_a_directory.write_text("mine\n")
    up = cli_command("sandbox", "up", "--state-dir", str(not_a_directory), "--kubeconfig", str(tmp_path / "k"))
    assert up.returncode == 2, up.stderr
    assert up.stderr.count("\n") == 1
    assert "is not a directory" in up.stderr
    assert not_a_directory.read_text() == "mine\n"


def test_an_empty_state_dir_is_taken_and_marked(tmp_path: Path) -> None:
    state = tmp_path / "empty"
    state.mkdir()
    _start_broken(state, tmp_path / "kubeconfig", _broken_release(tmp_path / "bin"))
    assert (state / STATE_DIR_MARKER).is_file()
    assert (state / "state.json").is_file()  # kept so that `sandbox down` finds the logs to remove


def test_a_marked_state_dir_is_reused_and_only_our_entries_are_cleared(tmp_path: Path) -> None:
    state, kubeconfig, binaries = tmp_path / "state", tmp_path / "kubeconfig", _broken_release(tmp_path / "bin")
    _start_broken(state, kubeconfig, binaries)
    (state / "etcd" / "stale-from-the-crash").write_text("old\n")
    (state / "notes.txt").write_text("someone's own file\n")

    _start_broken(state, kubeconfig, binaries)  # reused: no UsageError, stale sandbox files cleared
    assert not (state / "etcd" / "stale-from-the-crash").exists()
    assert (state / "notes.txt").read_text() == "someone's own file\n"

    leftover = Sandbox.load(state)
    assert leftover is not None
    leftover.down()
    assert sorted(path.name for path in state.iterdir()) == ["notes.txt"]  # the directory stays for it


def test_down_removes_a_state_dir_holding_only_what_the_sandbox_wrote(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _start_broken(state, state / "kubeconfig", _broken_release(tmp_path / "bin"))
    leftover = Sandbox.load(state)
    assert leftover is not None
    leftover.down()
    assert not state.exists()


def test_down_deletes_nothing_in_a_directory_without_the_marker(tmp_path: Path) -> None:
    state = tmp_path / "state"
    _start_broken(state, tmp_path / "kubeconfig", _broken_release(tmp_path / "bin"))
    (state / STATE_DIR_MARKER).unlink()  # as if state.json had been copied into a directory of the user's
    leftover = Sandbox.load(state)
    assert leftover is not None
    leftover.down()
    assert (state / "state.json").is_file()
    assert (state / "etcd").is_dir()


MERGED_KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: work
clusters:
- {name: work, cluster: {server: "https://work.example.com"}}
- {name: sandbox-1, cluster: {server: "https://127.0.0.1:20001"}}
users:
- {name: me, user: {token: mine}}
- {name: kibertas-async-sandbox-admin-sandbox-1, user: {token: sandbox}}
contexts:
- {name: work, context: {cluster: work, user: me}}
- {name: sandbox-1, context: {cluster: sandbox-1, user: kibertas-async-sandbox-admin-sandbox-1}}
"""


def test_a_kubeconfig_that_merely_holds_sandbox_contexts_is_never_deleted_or_overwritten(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(MERGED_KUBECONFIG)
    config = SandboxConfig(cluster_names=("one",), state_dir=tmp_path / "state", kubeconfig=kubeconfig, addons=())
    with pytest.raises(UsageError, match="was not written by the sandbox"):
        Sandbox.start(config, die_with_parent=True, binaries=_broken_release(tmp_path / "bin"))
    assert not (tmp_path / "state").exists()

    (tmp_path / "state").mkdir()
    recorded = Sandbox(tmp_path / "state", kubeconfig, "1.36.3", _broken_release(tmp_path / "bin2"))
    recorded.down()
    assert kubeconfig.read_text() == MERGED_KUBECONFIG


def test_importing_the_cli_module_loads_nothing_but_the_standard_library() -> None:
    listing = "import sys, kibertas_async.sandbox.cli; print('\\n'.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, check=True).stdout.split()
    )
    ours = {name for name in loaded if name.startswith("kibertas_async")}
    assert ours <= {"kibertas_async", "kibertas_async._version", "kibertas_async.sandbox", "kibertas_async.sandbox.cli"}
    assert not loaded & {"yaml", "kubernetes_asyncio", "anyio", "pluggy", "ssl", "urllib.request"}
