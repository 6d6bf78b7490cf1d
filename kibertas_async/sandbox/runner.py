"""Start, describe and stop a sandbox: N Kubernetes control planes on loopback sharing one etcd.

Layout of a state directory (default ``~/.local/state/kibertas-async/sandbox``)::

    .kibertas-async-sandbox        marker: this directory is the sandbox's, it may clear it
    state.json                     pids (with start times), ports, paths, admin tokens
    etcd/data/  etcd/etcd.log      the shared etcd; each cluster has its own --etcd-prefix
    clusters/<name>/pki/           CA, API server serving cert, service-account key
    clusters/<name>/tokens.csv     token auth file (admin in system:masters)
    clusters/<name>/kubeconfig     admin kubeconfig of this cluster alone (for its components)
    clusters/<name>/*.log          kube-apiserver, kube-controller-manager, kube-scheduler
    clusters/<name>/addons/<add-on>/   add-on work directories (kwok's log, ...)

The processes outlive ``kibertas-async sandbox up`` (each in its own session) and are found again
through ``state.json`` by ``status`` and ``down``. The sandbox is synchronous code on purpose: it
manages processes and files, and must not drag the async clients into the CLI's start-up.

The sandbox deletes only what it made: a state directory is used only when it is empty or carries the
marker, and clearing it (``up`` after a crash, ``down``) removes the entries listed above, nothing else;
a kubeconfig is overwritten or deleted only when every context in it is one the sandbox wrote.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kibertas_async.errors import UsageError
from kibertas_async.sandbox.addons import AddonContext, SandboxAddon, prepare_addons
from kibertas_async.sandbox.addons.discovery import RUN_CONFIG_NAME, collect_settings, default_addons, write_run_config
from kibertas_async.sandbox.api import ApiError, SandboxApi
from kibertas_async.sandbox.build import SandboxBinaries, ensure_binaries
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.pki import ClusterPki, create_cluster_pki
from kibertas_async.sandbox.processes import ManagedProcess, ProcessSpec, stop_all
from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION, normalize_kubernetes_version

STATE_DIR_ENV = "KIBERTAS_ASYNC_SANDBOX_STATE_DIR"
"""Environment variable overriding the default state directory."""

READY_TIMEOUT = 180.0
"""Default bound, in seconds, on ``up`` waiting for API servers, nodes and add-ons to be ready."""

KUBECONFIG_USER_PREFIX = "kibertas-async-sandbox-admin"
"""User names in the kubeconfig we write; also how we recognise a kubeconfig we may overwrite."""

STATE_DIR_MARKER = ".kibertas-async-sandbox"
"""The file that marks a state directory as the sandbox's own, written when the sandbox claims it."""

_STATE_FILE = "state.json"
_STATE_FORMAT = 1
_POLL_INTERVAL = 0.1
_LOWEST_PORT = 20000
_CLUSTER_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?")
_FLAG = re.compile(r"--[A-Za-z0-9][A-Za-z0-9-]*(=.*)?", re.DOTALL)

CORE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
"""The processes the sandbox itself starts (etcd is shared by the clusters), the ones ``extra_args`` may
reach. kwok and the plugins' add-ons are started by their :class:`SandboxAddon` and take their own options."""

FAULTS = ("pause", "stop", "unreachable")
"""What :meth:`SandboxCluster.fault` can do to a process for the length of a ``with`` block."""


def default_state_dir() -> Path:
    """``$KIBERTAS_ASYNC_SANDBOX_STATE_DIR``, else ``$XDG_STATE_HOME/kibertas-async/sandbox``."""
    if configured := os.environ.get(STATE_DIR_ENV):
        return Path(configured).expanduser()
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "kibertas-async" / "sandbox"


def default_kubeconfig() -> Path:
    """``~/.kube/kibertas-async-sandbox.yaml``: beside the user's kubeconfig, never replacing it."""
    return Path.home() / ".kube" / "kibertas-async-sandbox.yaml"


def numbered_cluster_names(count: int) -> tuple[str, ...]:
    """``sandbox-1`` ... ``sandbox-N``."""
    if count < 1:
        raise UsageError(f"--clusters {count}: give at least 1")
    return tuple(f"sandbox-{index}" for index in range(1, count + 1))


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
    """What to start."""

    cluster_names: tuple[str, ...] = ("sandbox-1", "sandbox-2")
    """One cluster (and kubeconfig context) per name."""
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    state_dir: Path = dataclasses.field(default_factory=default_state_dir)
    kubeconfig: Path = dataclasses.field(default_factory=default_kubeconfig)
    """Where the kubeconfig with one context per cluster is written."""
    bin_dir: Path | None = None
    """Take binaries from this directory instead of the build cache."""
    addons: tuple[SandboxAddon, ...] = dataclasses.field(default_factory=default_addons)
    """Started on every cluster, in order, once its API server is ready: kwok, then the add-ons that
    installed plugins register (``kibertas_async_register_sandbox_addons``)."""
    ready_timeout: float = READY_TIMEOUT
    extra_args: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)
    """Arguments added to a core process's own, by component (one of :data:`CORE_COMPONENTS`), each as
    ``--flag`` or ``--flag=value``: ``{"kube-apiserver": ["--enable-admission-plugins=AlwaysPullImages"]}``.
    They come after the sandbox's arguments, so a flag given again overrides the sandbox's value. Before
    anything starts, each binary parses its extra arguments (with ``--version``), so an unknown flag or a
    malformed value fails at once naming the process and the flag; a value the process refuses only
    when it runs fails the start with that process's log."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra_args", _checked_extra_args(self.extra_args))
        for name in self.cluster_names:
            if not _CLUSTER_NAME.fullmatch(name):
                raise UsageError(
                    f"cluster name {name!r} is not a lowercase DNS label of at most 32 characters; rename it"
                )
        if len(set(self.cluster_names)) != len(self.cluster_names) or not self.cluster_names:
            raise UsageError(f"cluster names {','.join(self.cluster_names)!r} must be distinct and not empty")


class SandboxCluster:
    """One sandbox cluster: its endpoint, credentials, processes and fault switches."""

    def __init__(
        self,
        name: str,
        directory: Path,
        port: int,
        token: str,
        processes: dict[str, ManagedProcess],
        on_change: Callable[[], None] = lambda: None,
        die_with_parent: bool = False,
        *,
        etcd: ManagedProcess | None = None,
    ) -> None:
        self.name = name
        self.directory = directory
        self.port = port
        self.token = token
        self.processes = processes
        """Component name (``kube-apiserver``, ``kube-scheduler``, ``kwok``, ...) → process."""
        self.etcd = etcd
        """The etcd every cluster of the sandbox shares (None for a cluster recorded without one)."""
        self._on_change = on_change
        self._die_with_parent = die_with_parent

    @property
    def context(self) -> str:
        """The kubeconfig context of this cluster (its name)."""
        return self.name

    @property
    def server(self) -> str:
        """The API server URL, ``https://127.0.0.1:PORT``."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def pki(self) -> ClusterPki:
        """Paths of this cluster's CA, serving certificate and service-account key."""
        return ClusterPki.in_directory(self.directory / "pki")

    @property
    def ca_file(self) -> Path:
        """The CA certificate that signed the API server's serving certificate."""
        return self.pki.ca_cert

    @property
    def kubeconfig(self) -> Path:
        """A kubeconfig for this cluster alone (admin), context and cluster named after it."""
        return self.directory / "kubeconfig"

    @property
    def apiserver(self) -> ManagedProcess:
        """The kube-apiserver process."""
        return self.processes["kube-apiserver"]

    def api(self) -> SandboxApi:
        """A small synchronous admin client (stdlib only) of this cluster's API server."""
        return SandboxApi(self.server, self.token, self.ca_file)

    def is_ready(self) -> bool:
        """Whether the API server answers ``/readyz`` with ok."""
        return self.api().is_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Block until ``/readyz`` is ok; fail early with the log's tail if the API server exits."""
        _wait_until(self.is_ready, f"{self.name}: kube-apiserver /readyz", [self.apiserver], timeout)

    def process(self, component: str) -> ProcessSwitch:
        """The fault switches of one of this cluster's processes: ``cluster.process("kube-scheduler").pause()``.

        ``component`` is ``etcd`` (shared: every cluster of the sandbox sees what is done to it),
        ``kube-apiserver``, ``kube-controller-manager``, ``kube-scheduler``, ``kwok`` or an add-on's
        process (the keys of :attr:`processes`). See :class:`ProcessSwitch` and docs/sandbox.md.

        :raises KeyError: no such process; the message lists the ones there are.
        """
        ready: Callable[[], bool] | None
        if component == "etcd" and self.etcd is not None:
            process, ready = self.etcd, functools.partial(_etcd_healthy, _etcd_client_url(self.etcd))
        elif component in self.processes:
            process = self.processes[component]
            ready = self.is_ready if component == "kube-apiserver" else None
        else:
            known = [*(["etcd"] if self.etcd is not None else []), *self.processes]
            raise KeyError(f"{self.name} has no process {component!r}; it has {', '.join(known)}")
        return ProcessSwitch(component, process, ready, self._on_change, self._die_with_parent)

    @contextlib.contextmanager
    def fault(self, component: str, fault: str) -> Iterator[ProcessSwitch]:
        """``with cluster.fault("kube-controller-manager", "stop"): ...``: the process is paused, stopped or
        unreachable (one of :data:`FAULTS`) within the block, and resumed or started again (and ready,
        where it has a readiness check) after it, also when the block raises.

        :raises ValueError: ``fault`` is not one of :data:`FAULTS`.
        """
        switch = self.process(component)
        blocks = {"pause": switch.paused, "stop": switch.stopped, "unreachable": switch.unreachable}
        if fault not in blocks:
            raise ValueError(f"fault {fault!r}: give one of {', '.join(FAULTS)} (restart is switch.restart())")
        with blocks[fault]():
            yield switch

    def stop_apiserver(self) -> None:
        """Stop the API server (SIGTERM, then SIGKILL): clients see connection refused."""
        self.process("kube-apiserver").stop()

    def start_apiserver(self, timeout: float = READY_TIMEOUT) -> None:
        """Start the API server again with the same port, certificates and data, and wait until ready.

        In a sandbox started with ``die_with_parent`` (tests), call it from the main thread.
        """
        self.process("kube-apiserver").start(timeout)

    def restart_apiserver(self, timeout: float = READY_TIMEOUT) -> None:
        """Stop and start the API server (same port and data): existing watches break and must resume."""
        self.process("kube-apiserver").restart(timeout)

    def apiserver_stopped(self) -> contextlib.AbstractContextManager[None]:
        """Within the block the API server is down; afterwards it is started again and ready."""
        return self.process("kube-apiserver").stopped()

    def unreachable(self) -> contextlib.AbstractContextManager[None]:
        """Within the block the API server is frozen (SIGSTOP): connections open, nothing answers.

        This is what a network partition looks like to a client: requests hang until their timeout.
        ``cluster.process(component).unreachable()`` does the same to another process.
        """
        return self.process("kube-apiserver").unreachable()

    def to_json(self) -> dict[str, Any]:
        """What the state file records about this cluster."""
        return {
            "name": self.name,
            "directory": str(self.directory),
            "port": self.port,
            "token": self.token,
            "processes": {component: process.to_json() for component, process in self.processes.items()},
        }


class ProcessSwitch:
    """Fault switches of one sandbox process, from :meth:`SandboxCluster.process`.

    ``pause``/``resume`` freeze and thaw it (SIGSTOP/SIGCONT to its process group: its sockets stay open,
    nothing it does happens); ``stop`` ends it (SIGTERM, SIGKILL after 10 s); ``start`` runs it again with
    the same arguments, ports and data and, for etcd and kube-apiserver, waits until it answers its health
    check; ``restart`` is both. The context managers undo their fault when the block ends, also when it
    raises. ``unreachable`` is a pause: for a server (etcd, kube-apiserver, an add-on that serves) that is
    what a network partition looks like to its clients (connections open, requests hang until their
    timeout); for a process that is only a client (controller-manager, scheduler, kwok) it is what the
    cluster sees of a partitioned one: it stops acting and its leases lapse. What a pause does not
    reproduce: a partitioned process keeps running, retries and sees its clock advance; a frozen one
    resumes as if no time had passed (with watches that may have expired).

    The state file records a restarted process's new pid, so ``sandbox status``/``down`` find it. In a
    sandbox started with ``die_with_parent`` (tests), start and restart from the main thread.
    """

    def __init__(
        self,
        component: str,
        process: ManagedProcess,
        ready: Callable[[], bool] | None,
        on_change: Callable[[], None],
        die_with_parent: bool,
    ) -> None:
        self.component = component
        self.managed = process
        """The underlying :class:`ManagedProcess` (spec, log, pid)."""
        self._ready = ready
        self._on_change = on_change
        self._die_with_parent = die_with_parent

    @property
    def pid(self) -> int | None:
        """The current pid (a new one after ``start``/``restart``)."""
        return self.managed.pid

    def is_alive(self) -> bool:
        """Whether the process runs (paused counts as alive)."""
        return self.managed.is_alive()

    def is_paused(self) -> bool:
        """Whether the process is frozen by :meth:`pause`."""
        return self.managed.is_paused()

    def pause(self) -> None:
        """Freeze the process (SIGSTOP to its group)."""
        self.managed.pause()

    def resume(self) -> None:
        """Thaw a paused process (SIGCONT); nothing happens to one that runs."""
        self.managed.resume()

    def stop(self) -> None:
        """End the process: SIGTERM, SIGKILL after 10 s (a paused one is thawed so it can exit)."""
        self.managed.stop()

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Run it again (same arguments, ports, data) unless it runs; then wait for its health check.

        etcd waits for ``/health``, kube-apiserver for ``/readyz``; the others have no serving port
        (``--secure-port=0``) and are only checked to be running: their effects follow once their
        informers have synced, so wait for the effect you need.

        :raises SandboxError: it exits or is not healthy within ``timeout``; a ``die_with_parent``
        sandbox's process started from a thread other than the main thread.
        """
        if not self.managed.is_alive():
            self.managed.start(die_with_parent=self._die_with_parent)
            self._on_change()
        if self._ready is not None:
            _wait_until(self._ready, f"{self.managed.spec.name} health", [self.managed], timeout)
        else:
            _check_alive([self.managed], "its start")

    def restart(self, timeout: float = READY_TIMEOUT) -> None:
        """Stop and start it: its connections and watches break, its in-memory state is rebuilt."""
        self.stop()
        self.start(timeout)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Paused within the block, resumed after it."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def unreachable(self) -> contextlib.AbstractContextManager[None]:
        """Unreachable within the block: a pause (see the class docstring for what that does and does not
        reproduce), resumed after it."""
        return self.paused()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Stopped within the block, started again (and healthy) after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()


class Sandbox:
    """A running (or partly started) sandbox, as recorded in its state directory."""

    def __init__(
        self,
        state_dir: Path,
        kubeconfig: Path,
        kubernetes_version: str,
        binaries: SandboxBinaries,
        etcd: ManagedProcess | None = None,
        clusters: Sequence[SandboxCluster] = (),
        addons: Sequence[SandboxAddon] = (),
    ) -> None:
        self.state_dir = state_dir
        self.binaries = binaries
        self.kubeconfig = kubeconfig
        """The kubeconfig with one context per cluster."""
        self.kubernetes_version = kubernetes_version
        self.etcd = etcd
        self.clusters = list(clusters)
        self._addons = tuple(addons)

    @classmethod
    def start(
        cls,
        config: SandboxConfig | None = None,
        *,
        die_with_parent: bool = False,
        binaries: SandboxBinaries | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Sandbox:
        """Start every process, wait until every cluster is usable, write the kubeconfig.

        Usable means: ``/readyz`` ok, the ``default`` ServiceAccount exists (pods can be created) and
        every add-on reports ready (for kwok: all nodes Ready). On failure everything started is
        stopped again and the error quotes the failing process's log.

        :param die_with_parent: the kernel kills every process when this Python process dies (tests).
        :param binaries: use these instead of building or finding them from ``config``.
        :raises UsageError: a sandbox is already running in the state directory, or bad configuration.
        :raises SandboxError: a process failed or something was not ready within ``ready_timeout``.
        """
        config = config or SandboxConfig()
        report = progress or (lambda _line: None)
        version = normalize_kubernetes_version(config.kubernetes_version)
        # Refuse bad input before any (possibly long) build.
        _check_kubeconfig_is_ours(config.kubeconfig)
        _claim_state_dir(config.state_dir)
        binaries = binaries or ensure_binaries(version, bin_dir=config.bin_dir, progress=report)
        _check_extra_args_parse(config.extra_args, binaries)
        prepare_addons(config.addons, report)
        sandbox = cls(config.state_dir, config.kubeconfig, version, binaries, addons=config.addons)
        starter = _Starter(sandbox, config, binaries, die_with_parent, report)
        try:
            starter.run()
        except BaseException:
            sandbox.stop_processes()
            sandbox.save()
            raise
        return sandbox

    @classmethod
    def load(cls, state_dir: Path | None = None) -> Sandbox | None:
        """The sandbox recorded in ``state_dir`` (default: :func:`default_state_dir`), or None."""
        state_dir = state_dir or default_state_dir()
        try:
            state = json.loads((state_dir / _STATE_FILE).read_text())
        except FileNotFoundError:
            return None
        if state.get("format") != _STATE_FORMAT:
            raise UsageError(f"{state_dir / _STATE_FILE} is from another kibertas-async version; delete {state_dir}")
        binaries = SandboxBinaries(**{name: Path(path) for name, path in state["binaries"].items()})
        sandbox = cls(state_dir, Path(state["kubeconfig"]), state["kubernetes_version"], binaries)
        if state["etcd"] is not None:
            sandbox.etcd = ManagedProcess.from_json(state["etcd"])
        for data in state["clusters"]:
            processes = {name: ManagedProcess.from_json(proc) for name, proc in data["processes"].items()}
            sandbox.clusters.append(
                SandboxCluster(
                    data["name"],
                    Path(data["directory"]),
                    data["port"],
                    data["token"],
                    processes,
                    sandbox.save,
                    etcd=sandbox.etcd,
                )
            )
        return sandbox

    @property
    def run_config(self) -> Path:
        """The ``--config`` file ``up`` writes with the add-ons' option values per cluster; every context
        of :attr:`kubeconfig` names it (extension ``kibertas-async.io/settings``), so ``run`` applies it."""
        return self.state_dir / RUN_CONFIG_NAME

    def run_command(self) -> str:
        """The shell command that runs every installed check on every cluster of this sandbox."""
        import shlex

        names = ",".join(cluster.context for cluster in self.clusters)
        return f"KUBECONFIG={shlex.quote(str(self.kubeconfig))} kibertas-async run --all --clusters {names}"

    def cluster(self, name: str) -> SandboxCluster:
        """The cluster called ``name``."""
        for cluster in self.clusters:
            if cluster.name == name:
                return cluster
        raise KeyError(name)

    def processes(self) -> list[ManagedProcess]:
        """Every process, in start order (etcd first)."""
        found = [self.etcd] if self.etcd is not None else []
        for cluster in self.clusters:
            found.extend(cluster.processes.values())
        return found

    def is_running(self) -> bool:
        """Whether any of its processes is still alive."""
        return any(process.is_alive() for process in self.processes())

    def stop_processes(self) -> None:
        """Stop all processes: the clusters' together first, then the etcd they depend on."""
        stop_all([process for cluster in self.clusters for process in cluster.processes.values()])
        if self.etcd is not None:
            self.etcd.stop()

    def down(self) -> None:
        """Stop every process, let add-ons clean up, delete what the sandbox wrote and the kubeconfig.

        Only the sandbox's own entries of the state directory are deleted (and the directory itself
        once it is empty); a file someone else put there stays, and so does the directory then.
        """
        self.stop_processes()
        for cluster in self.clusters:
            for addon in self._addons:
                addon.stop(_addon_context(cluster, addon, self))
        if _is_our_kubeconfig(self.kubeconfig):
            self.kubeconfig.unlink()
        if (self.state_dir / STATE_DIR_MARKER).exists():
            _remove_sandbox_entries(self.state_dir)
            (self.state_dir / STATE_DIR_MARKER).unlink()
            with contextlib.suppress(OSError):  # not empty: someone else's files are in it
                self.state_dir.rmdir()

    def save(self) -> None:
        """Write ``state.json`` atomically (readable by the owner only: it holds admin tokens)."""
        state = {
            "format": _STATE_FORMAT,
            "kubernetes_version": self.kubernetes_version,
            "kubeconfig": str(self.kubeconfig),
            "binaries": {name: str(path) for name, path in dataclasses.asdict(self.binaries).items()},
            "etcd": None if self.etcd is None else self.etcd.to_json(),
            "clusters": [cluster.to_json() for cluster in self.clusters],
        }
        _write_private(self.state_dir / _STATE_FILE, json.dumps(state, indent=2))

    def describe(self) -> list[str]:
        """Human-readable status lines: every cluster's endpoint and readiness, every process."""
        lines = [
            f"state: {self.state_dir}",
            f"kubeconfig: {self.kubeconfig}",
            f"settings: {self.run_config} (named by the kubeconfig's contexts)",
            f"run every check: {self.run_command()}",
            f"kubernetes: v{self.kubernetes_version}",
        ]
        if self.etcd is not None:
            lines.append(_describe_process("etcd", self.etcd))
        for cluster in self.clusters:
            ready = (
                "ready"
                if cluster.apiserver.is_alive() and not cluster.apiserver.is_paused() and cluster.is_ready()
                else "NOT ready"
            )
            lines.append(f"cluster {cluster.name}: {cluster.server} ({ready}), context {cluster.context}")
            lines.extend(f"  {_describe_process(name, process)}" for name, process in cluster.processes.items())
        return lines


class _Starter:
    """The steps of :meth:`Sandbox.start`, sharing one deadline."""

    def __init__(
        self,
        sandbox: Sandbox,
        config: SandboxConfig,
        binaries: SandboxBinaries,
        die_with_parent: bool,
        progress: Callable[[str], None],
    ) -> None:
        self.sandbox = sandbox
        self.config = config
        self.binaries = binaries
        self.die_with_parent = die_with_parent
        self.progress = progress
        self.deadline = time.monotonic() + config.ready_timeout

    def run(self) -> None:
        try:
            self._run()
        except SandboxError as error:
            raise _with_extra_args_note(error, self.config.extra_args) from error

    def _run(self) -> None:
        started = time.monotonic()
        etcd_url = self._start_etcd()
        for name in self.config.cluster_names:
            self._start_apiserver(name, etcd_url)
        for cluster in self.sandbox.clusters:
            cluster.wait_ready(self._remaining())
        self.progress(f"API servers ready after {time.monotonic() - started:.1f}s")
        contexts: list[tuple[SandboxCluster, SandboxAddon, AddonContext]] = []
        for cluster in self.sandbox.clusters:
            self._start(cluster, "kube-controller-manager", self._controller_manager_argv(cluster))
            self._start(cluster, "kube-scheduler", self._scheduler_argv(cluster))
            for addon in self.config.addons:
                context = _addon_context(cluster, addon, self.sandbox)
                context.work_dir.mkdir(parents=True, exist_ok=True)
                for spec in addon.start(context):
                    self._start(cluster, spec.name.rpartition("/")[2], spec.argv, spec.log_file, spec.env)
                contexts.append((cluster, addon, context))
        for cluster in self.sandbox.clusters:
            _wait_until(
                functools.partial(_exists, cluster.api(), "/api/v1/namespaces/default/serviceaccounts/default"),
                f"{cluster.name}: the default ServiceAccount (controller-manager at work)",
                list(cluster.processes.values()),
                self._remaining(),
            )
        for cluster, addon, context in contexts:
            addon.wait_ready(context, self._remaining())
            _check_alive(list(cluster.processes.values()), f"{cluster.name}: add-on {addon.name} setup")
        # The settings first: the kubeconfig's contexts point at them.
        write_run_config(
            self.sandbox.run_config,
            collect_settings([(addon, context) for _cluster, addon, context in contexts]),
        )
        kubeconfig = _kubeconfig(self.sandbox.clusters, settings=self.sandbox.run_config.absolute())
        _write_private(self.sandbox.kubeconfig, json.dumps(kubeconfig, indent=2))
        self.progress(f"sandbox ready after {time.monotonic() - started:.1f}s")

    def _remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def _start_etcd(self) -> str:
        client_port, peer_port = _free_port(), _free_port()
        directory = self.sandbox.state_dir / "etcd"
        client_url, peer_url = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
        spec = ProcessSpec(
            "etcd",
            (
                str(self.binaries.etcd),
                "--name=sandbox",
                f"--data-dir={directory / 'data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=sandbox={peer_url}",
                # Throwaway data: durability buys nothing and fsync is the slowest part of etcd.
                "--unsafe-no-fsync",
                "--log-level=warn",
                *self.config.extra_args.get("etcd", ()),
            ),
            directory / "etcd.log",
        )
        self.sandbox.etcd = ManagedProcess(spec)
        self.sandbox.etcd.start(die_with_parent=self.die_with_parent)
        self.sandbox.save()
        _wait_until(lambda: _etcd_healthy(client_url), "etcd /health", [self.sandbox.etcd], self._remaining())
        return client_url

    def _start_apiserver(self, name: str, etcd_url: str) -> None:
        directory = self.sandbox.state_dir / "clusters" / name
        pki = create_cluster_pki(directory / "pki", name)
        token = secrets.token_urlsafe(32)
        _write_private(
            directory / "tokens.csv", f'{token},{KUBECONFIG_USER_PREFIX},{KUBECONFIG_USER_PREFIX},"system:masters"\n'
        )
        cluster = SandboxCluster(
            name,
            directory,
            _free_port(),
            token,
            {},
            self.sandbox.save,
            die_with_parent=self.die_with_parent,
            etcd=self.sandbox.etcd,
        )
        _write_private(cluster.kubeconfig, json.dumps(_kubeconfig([cluster]), indent=2))
        self.sandbox.clusters.append(cluster)
        argv = (
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            f"--etcd-prefix=/kibertas-async-sandbox/{name}/registry",
            f"--secure-port={cluster.port}",
            "--bind-address=127.0.0.1",
            # Without it the API server looks for a default route to find its address and fails
            # on machines without one.
            "--advertise-address=127.0.0.1",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={directory / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.service_account_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            # Nothing answers on 127.0.0.1:443 for the `kubernetes` Service; don't advertise it.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            *self.config.extra_args.get("kube-apiserver", ()),
        )
        self._start(cluster, "kube-apiserver", argv)

    def _controller_manager_argv(self, cluster: SandboxCluster) -> tuple[str, ...]:
        return (
            str(self.binaries.kube_controller_manager),
            f"--kubeconfig={cluster.kubeconfig}",
            "--leader-elect=false",
            # One ServiceAccount per controller, as on real clusters, so RBAC applies to them too.
            "--use-service-account-credentials",
            f"--service-account-private-key-file={cluster.pki.service_account_key}",
            # Goes into every namespace's kube-root-ca.crt ConfigMap and legacy token Secrets.
            f"--root-ca-file={cluster.ca_file}",
            "--controllers=*",
            f"--cluster-name={cluster.name}",
            "--secure-port=0",
            "--profiling=false",
            *self.config.extra_args.get("kube-controller-manager", ()),
        )

    def _scheduler_argv(self, cluster: SandboxCluster) -> tuple[str, ...]:
        return (
            str(self.binaries.kube_scheduler),
            f"--kubeconfig={cluster.kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            "--profiling=false",
            *self.config.extra_args.get("kube-scheduler", ()),
        )

    def _start(
        self,
        cluster: SandboxCluster,
        component: str,
        argv: Sequence[str],
        log_file: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        spec = ProcessSpec(
            f"{cluster.name}/{component}", tuple(argv), log_file or cluster.directory / f"{component}.log", env or {}
        )
        process = ManagedProcess(spec)
        cluster.processes[component] = process
        process.start(die_with_parent=self.die_with_parent)
        self.sandbox.save()


def _addon_context(cluster: SandboxCluster, addon: SandboxAddon, sandbox: Sandbox) -> AddonContext:
    return AddonContext(
        cluster_name=cluster.name,
        api=cluster.api(),
        kubeconfig=cluster.kubeconfig,
        work_dir=cluster.directory / "addons" / addon.name,
        binaries=sandbox.binaries,
        kubernetes_version=sandbox.kubernetes_version,
        allocate_port=_free_port,
    )


def _claim_state_dir(state_dir: Path) -> None:
    """Use ``state_dir`` for a new sandbox: create it, or take an empty one, or clear one of ours.

    A directory that is neither empty nor marked as the sandbox's (``--state-dir ~/src``, say) is
    refused, and so is one whose sandbox still runs; nothing is deleted then.
    """
    if state_dir.exists() and not state_dir.is_dir():
        raise UsageError(f"state directory {state_dir} is not a directory; choose a new or empty --state-dir")
    marked = (state_dir / STATE_DIR_MARKER).is_file()
    if state_dir.is_dir() and not marked:
        try:
            empty = not any(state_dir.iterdir())
        except OSError as error:
            raise UsageError(f"cannot read state directory {state_dir}: {error.strerror or error}") from None
        if not empty:
            raise UsageError(
                f"state directory {state_dir} is not empty and was not made by the sandbox "
                f"(no {STATE_DIR_MARKER} in it); nothing was deleted: choose a new or empty --state-dir"
            )
    if marked:
        previous = Sandbox.load(state_dir) if (state_dir / _STATE_FILE).exists() else None
        if previous is not None and previous.is_running():
            raise UsageError(
                f"a sandbox is already running from {state_dir}; stop it with `kibertas-async sandbox down` "
                "or choose another --state-dir"
            )
        _remove_sandbox_entries(state_dir)  # left behind by a crash or a failed start
    try:
        state_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create state directory {state_dir}: {error.strerror or error}") from None
    _write_private(state_dir / STATE_DIR_MARKER, "This directory holds a kibertas-async sandbox's state.\n")


def _remove_sandbox_entries(state_dir: Path) -> None:
    """Delete what the sandbox writes into its state directory (the layout above), and nothing else."""
    for name in ("etcd", "clusters"):
        shutil.rmtree(state_dir / name, ignore_errors=True)
    for name in (_STATE_FILE, RUN_CONFIG_NAME):
        for path in (state_dir / name, state_dir / f".{name}.partial"):
            path.unlink(missing_ok=True)


def _check_kubeconfig_is_ours(path: Path) -> None:
    if path.exists() and not _is_our_kubeconfig(path):
        raise UsageError(f"{path} exists and was not written by the sandbox; give another --kubeconfig path")


def _is_our_kubeconfig(path: Path) -> bool:
    """Whether ``path`` is a kubeconfig the sandbox wrote: every context in it uses a sandbox user.

    A kubeconfig that merely contains our contexts among the user's own (merged with ``kubectl config
    view --flatten``, say) is the user's, and is never overwritten or deleted.
    """
    import yaml

    try:
        loaded: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    if not isinstance(loaded, dict):
        return False
    users = [entry.get("name") for entry in _entries(loaded, "users") if isinstance(entry, dict)]
    contexts = [entry.get("context") if isinstance(entry, dict) else None for entry in _entries(loaded, "contexts")]
    names = [*users, *(context.get("user") if isinstance(context, dict) else None for context in contexts)]
    return bool(users) and all(isinstance(name, str) and name.startswith(KUBECONFIG_USER_PREFIX) for name in names)


def _entries(kubeconfig: dict[str, Any], key: str) -> list[Any]:
    value = kubeconfig.get(key)
    return value if isinstance(value, list) else []


def _kubeconfig(clusters: Sequence[SandboxCluster], settings: Path | None = None) -> dict[str, Any]:
    """A kubeconfig (JSON, which is also YAML) with one context per cluster, admin token auth.

    With ``settings`` (the run config), each context carries the extension ``kibertas-async.io/settings``
    naming it and the context's section, so ``kibertas-async run`` applies the add-ons' option values.
    kubectl and client libraries keep context extensions as opaque data.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": clusters[0].context,
        "clusters": [
            {
                "name": cluster.name,
                "cluster": {
                    "server": cluster.server,
                    "certificate-authority-data": base64.b64encode(cluster.ca_file.read_bytes()).decode(),
                },
            }
            for cluster in clusters
        ],
        "users": [
            {"name": f"{KUBECONFIG_USER_PREFIX}-{cluster.name}", "user": {"token": cluster.token}}
            for cluster in clusters
        ],
        "contexts": [
            {
                "name": cluster.context,
                "context": {
                    "cluster": cluster.name,
                    "user": f"{KUBECONFIG_USER_PREFIX}-{cluster.name}",
                    **_settings_extension(cluster, settings),
                },
            }
            for cluster in clusters
        ],
    }


def _settings_extension(cluster: SandboxCluster, settings: Path | None) -> dict[str, Any]:
    from kibertas_async.clusters.selection import SETTINGS_EXTENSION

    if settings is None:
        return {}
    return {
        "extensions": [{"name": SETTINGS_EXTENSION, "extension": {"config": str(settings), "cluster": cluster.name}}]
    }


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(partial, path)


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the ephemeral range.

    The server binds it a moment later. Ports from ``bind(0)`` come from the ephemeral range, which every
    outgoing connection also draws from, so one could take the port in between; below that range only
    another listener can, which makes a clash between sandboxes started in parallel unlikely.
    """
    ephemeral_low = _ephemeral_port_range()[0]
    for _attempt in range(100):
        port = random.randrange(_LOWEST_PORT, ephemeral_low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # a crowded machine: any free port
        probe.bind(("127.0.0.1", 0))
        chosen: int = probe.getsockname()[1]
        return chosen


def _ephemeral_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return (32768, 60999)  # Linux's default
    return (int(low), int(high))


def _etcd_healthy(client_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{client_url}/health", timeout=2) as response:
            return bool(json.load(response).get("health") == "true")
    except OSError:
        return False


def _exists(api: SandboxApi, path: str) -> bool:
    try:
        api.get(path)
    except ApiError:
        return False
    return True


def _check_alive(processes: Sequence[ManagedProcess], during: str) -> None:
    for process in processes:
        if not process.is_alive():
            raise SandboxError(
                f"{process.spec.name} exited (status {process.exit_code()}) during {during}; "
                f"last lines of {process.spec.log_file}:\n{process.log_tail()}"
            )


def _wait_until(condition: Callable[[], bool], what: str, watched: Sequence[ManagedProcess], timeout: float) -> None:
    """Poll ``condition`` until true; fail at once if a watched process dies, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        _check_alive(watched, f"waiting for {what}")
        if time.monotonic() >= deadline:
            logs = "\n".join(f"--- {p.spec.log_file}:\n{p.log_tail(10)}" for p in watched)
            raise SandboxError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")
        time.sleep(_POLL_INTERVAL)


def _describe_process(name: str, process: ManagedProcess) -> str:
    state = ("paused" if process.is_paused() else "running") if process.is_alive() else "stopped"
    return f"{name}: pid {process.pid} {state}, log {process.spec.log_file}"


def _etcd_client_url(etcd: ManagedProcess) -> str:
    """The client URL etcd was started with (its ``--listen-client-urls``)."""
    for argument in etcd.spec.argv:
        if argument.startswith("--listen-client-urls="):
            return argument.partition("=")[2].split(",")[0]
    raise SandboxError(f"{etcd.spec.name} was started without --listen-client-urls: {etcd.spec.argv}")


def _checked_extra_args(extra_args: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """``SandboxConfig.extra_args`` as tuples, refusing unknown components and arguments that are not flags.

    One flag per item (``--flag`` or ``--flag=value``), so that no value can be mistaken for a flag.
    """
    checked: dict[str, tuple[str, ...]] = {}
    for component, arguments in extra_args.items():
        if component not in CORE_COMPONENTS:
            raise UsageError(
                f"extra arguments for {component!r}: the sandbox starts {', '.join(CORE_COMPONENTS)} "
                "(kwok and the add-ons take their own options)"
            )
        if isinstance(arguments, str):
            raise UsageError(f"extra arguments for {component}: give a list of flags, not the string {arguments!r}")
        for argument in arguments:
            if not isinstance(argument, str) or not _FLAG.fullmatch(argument):
                raise UsageError(f"extra argument {argument!r} for {component}: give each as --flag or --flag=value")
        checked[component] = tuple(arguments)
    return checked


def _binary_of(component: str, binaries: SandboxBinaries) -> Path:
    path: Path = getattr(binaries, component.replace("-", "_"))
    return path


def _check_extra_args_parse(extra_args: Mapping[str, Sequence[str]], binaries: SandboxBinaries) -> None:
    """Let each binary parse its extra arguments (with ``--version``, which starts nothing) before the
    sandbox starts anything: an unknown flag or a malformed value is then an error naming both, not a
    process that dies (or a readiness wait that times out) later.

    :raises SandboxError: a binary refused its arguments; the message quotes its error line.
    """
    for component, arguments in extra_args.items():
        if not arguments:
            continue
        argv = [str(_binary_of(component, binaries)), *arguments, "--version"]
        try:
            parsed = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SandboxError(f"{component} could not check its extra arguments ({argv[0]}): {error}") from error
        if parsed.returncode != 0:
            output = (parsed.stderr + parsed.stdout).splitlines()
            refusal = next(
                (line for line in output if line.startswith(("Error:", "flag provided", "invalid value"))),
                next((line for line in output if line.strip()), f"exit status {parsed.returncode}"),
            )
            raise SandboxError(
                f"{component} refused its extra arguments {' '.join(arguments)} "
                f"(SandboxConfig.extra_args / --extra-arg): {refusal.strip()}"
            )


def _with_extra_args_note(error: SandboxError, extra_args: Mapping[str, Sequence[str]]) -> SandboxError:
    """``error`` with a note naming the extra arguments of the process it is about, if that one had any:
    a value a process refuses only when it runs (an unknown admission plugin) then reads as that flag's."""
    message = str(error)
    for component, arguments in extra_args.items():
        if arguments and re.match(rf"(\S+/)?{re.escape(component)} exited", message):
            return SandboxError(
                f"{message}\n{component} was started with the extra arguments {' '.join(arguments)} "
                "(SandboxConfig.extra_args / --extra-arg); its log above says which it refused"
            )
    return error
