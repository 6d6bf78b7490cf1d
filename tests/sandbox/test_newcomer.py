"""The newcomer's path: ``kibertas-async sandbox up``, then the ``run`` command it prints, pasted as is.

The sandbox is started through the CLI in a temporary state directory with its own kubeconfig (ports are
free ones picked at start), so a user's own sandbox is never touched. The printed command names no
``--config``: the kubeconfig's contexts carry the add-ons' settings (``kibertas-async.io/settings``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kibertas_async.sandbox.runner import Sandbox

# Two sandboxes (the session's and this one) and `run --all`, on 2 shared cores: give it time.
pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(1200)]

BIN = Path(sys.executable).parent


def _newcomer_env() -> dict[str, str]:
    """This environment without anything that would steer a run (a newcomer has set none of it); the
    sandbox's own build settings (cache, binaries, cert-manager controller) stay."""
    kept = ("KIBERTAS_ASYNC_CACHE", "KIBERTAS_ASYNC_SANDBOX_BIN_DIR", "KIBERTAS_ASYNC_CERT_MANAGER_CONTROLLER")
    env = {
        key: value
        for key, value in os.environ.items()
        if key in kept or not (key.startswith("KIBERTAS_ASYNC_") or key in ("KUBECONFIG", "LOG_LEVEL"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # `kibertas-async` as a user has it on PATH
    return env


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory whose sandbox is brought down even when the test fails half-way."""
    directory = tmp_path / "state"
    yield directory
    leftover = Sandbox.load(directory)
    if leftover is not None:
        leftover.down()


def test_the_run_command_sandbox_up_prints_passes_every_check(
    sandbox: Sandbox, state_dir: Path, tmp_path: Path
) -> None:
    # ``sandbox`` (the session fixture) is requested so a missing build skips or fails like every sandbox test.
    kubeconfig = tmp_path / "kube" / "sandbox.yaml"
    env = _newcomer_env()
    up = subprocess.run(
        ["kibertas-async", "sandbox", "up", "--state-dir", str(state_dir), "--kubeconfig", str(kubeconfig)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert up.returncode == 0, up.stderr[-3000:]
    commands = [line.strip() for line in up.stdout.splitlines() if "kibertas-async run " in line]
    assert len(commands) == 1, up.stdout
    command = commands[0]
    assert (
        command == f"KUBECONFIG={shlex.quote(str(kubeconfig))} kibertas-async run --all --clusters sandbox-1,sandbox-2"
    )

    status = subprocess.run(
        ["kibertas-async", "sandbox", "status", "--state-dir", str(state_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f"run every check: {command}" in status.stdout.splitlines()

    # Each context names the settings file `up` wrote, and the section for its cluster.
    written = yaml.safe_load(kubeconfig.read_text())
    settings = state_dir / "kibertas-async.yaml"
    for context in written["contexts"]:
        assert context["context"]["extensions"] == [
            {"name": "kibertas-async.io/settings", "extension": {"config": str(settings), "cluster": context["name"]}}
        ]
    # kubectl keeps the extension as opaque data and works as before.
    started = Sandbox.load(state_dir)
    assert started is not None
    kubectl = subprocess.run(
        [str(started.binaries.kubectl), "--kubeconfig", str(kubeconfig), "get", "--raw", "/readyz"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert kubectl.stdout.strip() == "ok", kubectl.stderr

    report = tmp_path / "report.json"
    run = subprocess.run(
        f"{command} --report-json {shlex.quote(str(report))} --log-format json",
        shell=True,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    results = json.loads(report.read_text())["results"]
    not_passed = [
        f"{r['cluster']}/{r['check']}: {r['outcome']} in {r['step']}: {r['reason']}"
        for r in results
        if r["outcome"] != "passed"
    ]
    assert not_passed == [], run.stderr[-3000:]
    assert run.returncode == 0, run.stderr[-3000:]
    listed = subprocess.run(["kibertas-async", "list", "--json"], env=env, capture_output=True, text=True, timeout=120)
    installed = {row["name"] for row in json.loads(listed.stdout)["checks"]}
    assert {"ingress", "datadog-agent", "fluent"} <= installed  # the three that were NG without the settings
    ran = {(r["cluster"], r["check"]) for r in results}
    assert ran == {(cluster, check) for cluster in ("sandbox-1", "sandbox-2") for check in installed}
    print(f"\n{len(ran)} results, all passed: {sorted(ran)}")


def test_a_deleted_settings_file_is_one_line_and_exit_2(sandbox: Sandbox, tmp_path: Path) -> None:
    # The session sandbox's kubeconfig, copied: its contexts name a settings file that is then gone.
    kubeconfig = tmp_path / "kubeconfig.yaml"
    document = yaml.safe_load(sandbox.kubeconfig.read_text())
    missing = tmp_path / "gone" / "kibertas-async.yaml"
    for context in document["contexts"]:
        context["context"]["extensions"][0]["extension"]["config"] = str(missing)
    kubeconfig.write_text(yaml.safe_dump(document))
    env = {**_newcomer_env(), "KUBECONFIG": str(kubeconfig)}
    run = subprocess.run(
        ["kibertas-async", "run", "--all", "--clusters", "sandbox-1,sandbox-2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert f"cannot read config file {missing}: No such file or directory" in run.stderr
    assert "--ignore-kubeconfig-settings" in run.stderr
    ignored = subprocess.run(
        ["kibertas-async", "run", "ingress", "--clusters", "sandbox-1", "--ignore-kubeconfig-settings", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ignored.returncode == 0, ignored.stderr
    assert "ingress-hostname = ''  (default)" in ignored.stdout
