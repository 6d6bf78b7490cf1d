"""The add-on seam: an add-on's processes are run, recorded and stopped like the sandbox's own."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from kibertas_async.sandbox.addons import AddonContext, PreparedAddon
from kibertas_async.sandbox.addons.kwok import KwokAddon, NodeShape
from kibertas_async.sandbox.processes import ProcessSpec
from kibertas_async.sandbox.runner import Sandbox, SandboxConfig
from tests.sandbox.processes import live_processes


class StaticFilesAddon:
    """A stand-in service: an HTTP server on a free loopback port serving one file."""

    name = "static-files"

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self.stopped: list[str] = []
        self.prepared = 0

    def prepare(self, progress: Callable[[str], None]) -> None:
        assert not self.ports, "prepare runs before any start"
        self.prepared += 1
        progress("static-files: nothing to build")

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        (context.work_dir / "hello.txt").write_text(f"hello from {context.cluster_name}\n")
        self.ports[context.cluster_name] = port = context.allocate_port()
        argv = (sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(context.work_dir))
        return [ProcessSpec(f"{context.cluster_name}/static-files", (*argv, str(port)), context.work_dir / "log")]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        assert context.api.is_ready()  # the cluster is up before any add-on is asked
        url = f"http://127.0.0.1:{self.ports[context.cluster_name]}/hello.txt"
        for _attempt in range(int(timeout * 10)):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                return
            except OSError:
                continue
        raise AssertionError(f"{url} never answered")

    def stop(self, context: AddonContext) -> None:
        self.stopped.append(context.cluster_name)


def test_an_addon_runs_beside_each_cluster_and_goes_with_down(sandbox: Sandbox, tmp_path: Path) -> None:
    # ``sandbox`` is requested only so a missing build skips or fails this test like the others.
    addon = StaticFilesAddon()
    config = SandboxConfig(
        cluster_names=("blue", "green"),
        state_dir=tmp_path / "state",
        kubeconfig=tmp_path / "kubeconfig",
        addons=(KwokAddon(nodes=[NodeShape("t3.small", "ap-northeast-1a", "SPOT", cpu="2", memory="2Gi")]), addon),
    )
    assert isinstance(addon, PreparedAddon)
    started = Sandbox.start(config, die_with_parent=True)
    try:
        for name in ("blue", "green"):
            process = started.cluster(name).processes["static-files"]
            assert process.is_alive()
            with urllib.request.urlopen(f"http://127.0.0.1:{addon.ports[name]}/hello.txt", timeout=5) as answer:
                assert answer.read() == f"hello from {name}\n".encode()
        recorded = Sandbox.load(config.state_dir)
        assert recorded is not None
        assert recorded.cluster("green").processes["static-files"].pid == process.pid
        pids = [p.pid for p in started.processes() if p.pid is not None]
    finally:
        started.down()
    assert live_processes(pids) == []
    assert addon.stopped == ["blue", "green"]
    assert addon.prepared == 1
