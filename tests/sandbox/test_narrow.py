"""A narrower sandbox for plugin tests: the add-ons it starts, and extra arguments for its core processes.

Through the ``sandbox_factory`` fixture, ``SandboxConfig`` and ``sandbox up --addons/--extra-arg``; a bad
argument is refused naming the process and the flag, before anything starts when the binary's own flag
parsing refuses it, with the process's log when it refuses it only at run time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kibertas_async.errors import UsageError
from kibertas_async.sandbox.addons.discovery import default_addons, select_addons
from kibertas_async.sandbox.addons.kwok import KwokAddon, NodeShape
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.runner import Sandbox, SandboxConfig
from kibertas_async.testing.plugin import SandboxFactory
from tests.sandbox.processes import live_processes

CORE = {"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
EXTRA_ARGS = {
    "kube-apiserver": ["--enable-admission-plugins=AlwaysPullImages"],
    "kube-controller-manager": ["--concurrent-deployment-syncs=3"],
    "kube-scheduler": ["--v=3"],
}


@pytest.fixture(scope="module")
def narrow(sandbox_factory: SandboxFactory) -> Iterator[Sandbox]:
    """One cluster with kwok and no other add-on, the core processes given :data:`EXTRA_ARGS`."""
    started = sandbox_factory(clusters=["narrow"], addons=["kwok"], extra_args=EXTRA_ARGS)
    yield started
    started.down()


def pod_with_pull_policy(name: str, policy: str) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": "registry.invalid/none:1", "imagePullPolicy": policy}]},
    }


def test_a_kwok_only_sandbox_runs_the_control_plane_and_kwok_alone(narrow: Sandbox) -> None:
    cluster = narrow.cluster("narrow")
    assert set(cluster.processes) == {*CORE, "kwok"}
    nodes = cluster.api().get("/api/v1/nodes")["items"]
    assert sorted(node["metadata"]["name"] for node in nodes) == [f"kwok-node-{i}" for i in range(1, 5)]
    recorded = json.loads((narrow.state_dir / "state.json").read_text())
    assert set(recorded["clusters"][0]["processes"]) == {*CORE, "kwok"}


def test_an_extra_admission_plugin_changes_what_the_apiserver_stores(narrow: Sandbox, sandbox: Sandbox) -> None:
    # The session sandbox (default arguments) is the control: the same pod keeps its pull policy there.
    body = pod_with_pull_policy("pull-policy", "IfNotPresent")
    dry_run = "/api/v1/namespaces/default/pods?dryRun=All"
    plain = sandbox.cluster("sandbox-1").api().create(dry_run, body)
    admitted = narrow.cluster("narrow").api().create(dry_run, body)
    assert plain["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert admitted["spec"]["containers"][0]["imagePullPolicy"] == "Always"  # AlwaysPullImages at work


def test_extra_arguments_follow_the_sandbox_s_own_on_each_command_line(narrow: Sandbox) -> None:
    cluster = narrow.cluster("narrow")
    for component, extra in EXTRA_ARGS.items():
        process = cluster.processes[component]
        command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        assert command_line[-len(extra) :] == extra, component
        assert "--secure-port=0" in command_line or component == "kube-apiserver"  # the sandbox's own stay


def test_add_ons_are_chosen_by_name_or_given_as_objects(sandbox_factory: SandboxFactory) -> None:
    one_node = KwokAddon(nodes=[NodeShape("t3.small", "ap-northeast-1a", "SPOT", cpu="2", memory="2Gi")])
    started = sandbox_factory(clusters=["one-node"], addons=[one_node])
    try:
        assert set(started.cluster("one-node").processes) == {*CORE, "kwok"}
        nodes = started.cluster("one-node").api().get("/api/v1/nodes")["items"]
        assert [node["metadata"]["labels"]["node.kubernetes.io/instance-type"] for node in nodes] == ["t3.small"]
        pids = [process.pid for process in started.processes() if process.pid is not None]
    finally:
        started.down()
    assert live_processes(pids) == []


def test_an_unknown_add_on_name_lists_the_installed_ones() -> None:
    listed = r"the installed ones are kwok, .*karpenter.* \(and, only when named, node-agent, argocd\)"
    with pytest.raises(UsageError, match=f"no sandbox add-on called kwk, nope; {listed}"):
        select_addons(["kwok", "kwk", "nope"])
    assert [addon.name for addon in select_addons(["kwok", "kwok"])] == ["kwok"]


def test_the_optional_add_ons_start_only_when_named_and_after_the_defaults() -> None:
    assert {"node-agent", "argocd"}.isdisjoint(addon.name for addon in default_addons())
    chosen = [addon.name for addon in select_addons(["argocd", "node-agent", "kwok"])]
    assert chosen == ["kwok", "node-agent", "argocd"]


@pytest.mark.parametrize(
    ("extra_args", "refusal"),
    [
        ({"kwok": ["--cidr=10.0.0.0/8"]}, "extra arguments for 'kwok': the sandbox starts etcd, kube-apiserver"),
        ({"kube-apiserver": ["max-requests-inflight=5"]}, "give each as --flag or --flag=value"),
        ({"kube-apiserver": ["--max-requests-inflight", "5"]}, "'5' for kube-apiserver: give each as --flag"),
        ({"kube-scheduler": "--v=3"}, "give a list of flags, not the string '--v=3'"),
    ],
)
def test_extra_arguments_that_are_not_flags_of_a_core_process_are_usage_errors(
    extra_args: dict[str, list[str]], refusal: str
) -> None:
    with pytest.raises(UsageError, match=refusal.replace("(", r"\(")):
        SandboxConfig(extra_args=extra_args)


@pytest.mark.parametrize(
    ("component", "flag", "refusal"),
    [
        ("kube-scheduler", "--no-such-flag", "Error: unknown flag: --no-such-flag"),
        ("kube-controller-manager", "--leader-elect=maybe", 'Error: invalid argument "maybe" for "--leader-elect"'),
        ("kube-apiserver", "--max-requests-inflight=many", 'invalid argument "many" for "--max-requests-inflight"'),
        ("etcd", "--no-such-flag", "flag provided but not defined: -no-such-flag"),
    ],
)
def test_a_flag_a_binary_refuses_fails_the_start_before_anything_runs(
    sandbox_factory: SandboxFactory, tmp_path: Path, component: str, flag: str, refusal: str
) -> None:
    # ``sandbox_factory`` is requested only so a missing build skips or fails this test like the others.
    state_dir = tmp_path / "state"
    config = SandboxConfig(
        cluster_names=("refused",),
        state_dir=state_dir,
        kubeconfig=tmp_path / "kubeconfig",
        addons=(),
        extra_args={component: [flag]},
    )
    with pytest.raises(SandboxError) as raised:
        Sandbox.start(config, die_with_parent=True)
    assert str(raised.value).startswith(f"{component} refused its extra arguments {flag} ")
    assert refusal in str(raised.value)
    assert Sandbox.load(state_dir) is None  # no state written: no process was started


def test_a_flag_refused_at_run_time_names_the_process_its_flag_and_leaves_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    config = SandboxConfig(
        cluster_names=("refused",),
        state_dir=state_dir,
        kubeconfig=tmp_path / "kubeconfig",
        addons=(),
        extra_args={"kube-apiserver": ["--enable-admission-plugins=NoSuchPlugin"]},
    )
    with pytest.raises(SandboxError) as raised:  # parses fine; the API server refuses the plugin as it starts
        Sandbox.start(config, die_with_parent=True)
    message = str(raised.value)
    assert message.startswith("refused/kube-apiserver exited")
    assert 'plugin \\"NoSuchPlugin\\" is unknown' in message  # the log line quoted
    assert "kube-apiserver was started with the extra arguments --enable-admission-plugins=NoSuchPlugin" in message
    recorded = Sandbox.load(state_dir)
    assert recorded is not None
    assert live_processes([process.pid for process in recorded.processes() if process.pid is not None]) == []
    recorded.down()


def sandbox_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kibertas_async.sandbox", *args], capture_output=True, text=True, timeout=300
    )


def test_up_takes_addons_and_extra_arguments(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    state_dir, kubeconfig = tmp_path / "state", tmp_path / "kubeconfig"
    location = ("--state-dir", str(state_dir))
    up = sandbox_command(
        "up", "--clusters", "1", "--addons", "kwok", "--extra-arg", "kube-scheduler=--v=3", "--kubeconfig",
        str(kubeconfig), *location,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads((state_dir / "state.json").read_text())
        processes = state["clusters"][0]["processes"]
        assert set(processes) == {*CORE, "kwok"}
        assert processes["kube-scheduler"]["argv"][-1] == "--v=3"
        assert sandbox_command("status", *location).returncode == 0
    finally:
        assert sandbox_command("down", *location).returncode == 0
    assert not state_dir.exists()


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (("--addons", "kwok,nope"), "error: no sandbox add-on called nope; the installed ones are kwok"),
        (("--addons", "kwok,"), "error: --addons 'kwok,' has an empty entry"),
        (("--extra-arg", "kube-scheduler"), "error: --extra-arg 'kube-scheduler': give COMPONENT=--FLAG[=VALUE]"),
        (("--extra-arg", "kwok=--cidr=10.0.0.0/8"), "error: extra arguments for 'kwok': the sandbox starts"),
    ],
)
def test_up_refuses_bad_addons_and_extra_arguments_before_starting(
    tmp_path: Path, args: tuple[str, ...], refusal: str
) -> None:
    up = sandbox_command("up", *args, "--state-dir", str(tmp_path / "state"), "--kubeconfig", str(tmp_path / "kc"))
    assert up.returncode == 2, up.stderr
    assert up.stderr.startswith(refusal), up.stderr
    assert not (tmp_path / "state").exists()
