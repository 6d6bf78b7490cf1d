"""The Argo CD add-on: the real Argo CD syncing Applications from a git repository served on loopback.

Opt-in (not in ``default_addons()``), for the PostSync Job's test: per cluster it installs Argo CD's
Application and AppProject CRDs, the namespace ``argocd`` with its ``argocd-cm``/``argocd-secret`` and the
AppProject ``default`` (Argo CD's API server would create that one; it does not run here), and runs four
processes, all on 127.0.0.1:

- ``redis`` (Debian's ``redis-server``, no persistence): Argo CD's cache;
- ``git-daemon``: serves the bare repository ``deploy.git`` (:func:`repository_in`) as
  ``git://127.0.0.1:PORT/deploy.git``; a test commits manifests to it with :func:`commit_manifests`;
- ``argocd-repo-server``: renders an Application's source from git;
- ``argocd-application-controller``: syncs Applications to the cluster (``https://kubernetes.default.svc``,
  this cluster, through its admin kubeconfig: ``ARGOCD_FAKE_IN_CLUSTER``), runs their hooks and records
  the operation's state in ``status.operationState``.

The two Argo CD commands are one binary built from the Go module proxy at :data:`ARGOCD_VERSION` under our
own ``main`` (``main.go`` here, the two commands only), from a copy of the module whose controller metrics
server listens on 127.0.0.1 instead of 0.0.0.0 (Argo CD has no flag for that address). Not run: the API
server, UI, Dex, ApplicationSet and notifications controllers; so no ``argocd`` CLI, no SSO, no
repository credentials (the repository needs none).
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kibertas_async.sandbox.addons import (
    AddonContext,
    answers_http_ok,
    create_once,
    created_when_served,
    install_crds,
    log_tail,
    wait_until,
)
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.gobuild import (
    TextEdit,
    go_command,
    go_command_path,
    module_directory,
    module_replaces,
    patched_module,
    patched_module_path,
)
from kibertas_async.sandbox.processes import ProcessSpec

__all__ = [
    "APPLICATIONS",
    "ARGOCD_NAMESPACE",
    "ARGOCD_VERSION",
    "ArgoCdAddon",
    "GitRepository",
    "application_manifest",
    "build_argocd",
    "commit_manifests",
    "repository_in",
    "sync_operation",
]

ARGOCD_MODULE = "github.com/argoproj/argo-cd/v2"
ARGOCD_VERSION = "v2.14.21"
"""The newest v2 release; it builds with the machine's Go (v3 needs a newer toolchain)."""
ARGOCD_NAMESPACE = "argocd"
APPLICATIONS = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"
"""The API path of Applications in :data:`ARGOCD_NAMESPACE`."""
BINARY_NAME = "argocd-sync"
"""Our binary of the two commands (application controller and repo server)."""
CONTROLLER_PROCESS = "argocd-application-controller"
REPO_SERVER_PROCESS = "argocd-repo-server"
REPOSITORY_NAME = "deploy.git"
IN_CLUSTER = "https://kubernetes.default.svc"
"""The destination server of an Application that deploys to the cluster Argo CD runs in."""
REDIS_SERVER = "redis-server"
SYNC_OPTIONS = ("CreateNamespace=true",)
"""The sync options of :func:`application_manifest`'s Applications and of :func:`sync_operation`."""
LOOPBACK_PATCH = "loopback-1"
"""Names our change to Argo CD's source (bump it when the edits change: the cache key follows it)."""
LOOPBACK_EDITS = (
    TextEdit(
        "controller/appcontroller.go",
        'fmt.Sprintf("0.0.0.0:%d", metricsPort)',
        'fmt.Sprintf("127.0.0.1:%d", metricsPort)',
    ),
)
"""The application controller's metrics (and health) server binds 0.0.0.0, with no flag for the address."""
_MAIN_SOURCE = "main.go"
_URL_FILE = "repository-url"
_CRD_FILES = ("application-crd.yaml", "appproject-crd.yaml")
_PART_OF = {"app.kubernetes.io/part-of": "argocd"}
"""Argo CD reads its ConfigMap and Secret only when they carry this label."""
_READY_TIMEOUT = 90.0
_SOCKET_PATH_LIMIT = 100
"""A Unix socket path longer than about 107 bytes cannot be bound."""


def build_argocd(progress: Callable[[str], None] | None = None) -> Path:
    """Argo CD's application controller and repo server in one binary, built once into the shared cache.

    Instant once built; the first build downloads Argo CD's modules and compiles its controller (several
    minutes on 2 cores; ``kibertas-async sandbox build`` runs it ahead of time).
    """
    main_go = (Path(__file__).parent / _MAIN_SOURCE).read_text(encoding="utf-8")
    replaces = _replaces()
    built = go_command_path(BINARY_NAME, ARGOCD_VERSION, sources={"main.go": main_go}, replaces=replaces)
    if built.exists():
        return built
    patched_module(ARGOCD_MODULE, ARGOCD_VERSION, LOOPBACK_PATCH, LOOPBACK_EDITS)
    return go_command(
        BINARY_NAME,
        ARGOCD_MODULE,
        ARGOCD_VERSION,
        ".",
        progress=progress,
        sources={"main.go": main_go},
        replaces=replaces,
    )


def _replaces() -> list[str]:
    """Argo CD's own replace lines (Go applies only the main module's) and ours to the patched copy."""
    patched = patched_module_path(ARGOCD_MODULE, ARGOCD_VERSION, LOOPBACK_PATCH)
    return [*module_replaces(ARGOCD_MODULE, ARGOCD_VERSION), f"{ARGOCD_MODULE} => {patched}"]


def load_crds() -> list[dict[str, Any]]:
    """Argo CD's Application and AppProject CRDs at :data:`ARGOCD_VERSION`."""
    import yaml

    directory = module_directory(ARGOCD_MODULE, ARGOCD_VERSION) / "manifests" / "crds"
    return [yaml.safe_load((directory / name).read_text(encoding="utf-8")) for name in _CRD_FILES]


@dataclass(frozen=True)
class GitRepository:
    """The add-on's repository on one cluster: where it is on disk and the URL Argo CD clones."""

    path: Path
    """The bare repository."""
    url: str
    """``git://127.0.0.1:PORT/deploy.git``."""


def repository_in(work_dir: Path) -> GitRepository:
    """The repository of the add-on whose work directory (``<cluster dir>/addons/argocd``) is ``work_dir``.

    :raises SandboxError: when the add-on has not started there.
    """
    try:
        url = (work_dir / _URL_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SandboxError(f"no Argo CD add-on has started in {work_dir}") from None
    return GitRepository(work_dir / "git" / REPOSITORY_NAME, url)


def commit_manifests(repository: GitRepository, files: Mapping[str, str], message: str) -> str:
    """Make ``files`` (path in the repository -> text) the whole content of the repository's ``main`` branch
    in one new commit; return the commit's SHA."""
    with tempfile.TemporaryDirectory(prefix="kibertas-async-git-") as work:
        env = {
            **os.environ,
            "GIT_DIR": str(repository.path),
            "GIT_WORK_TREE": work,
            "GIT_INDEX_FILE": str(Path(work) / ".index"),
            "GIT_AUTHOR_NAME": "kibertas-async sandbox",
            "GIT_AUTHOR_EMAIL": "sandbox@kibertas-async.invalid",
            "GIT_COMMITTER_NAME": "kibertas-async sandbox",
            "GIT_COMMITTER_EMAIL": "sandbox@kibertas-async.invalid",
        }
        for relative, text in files.items():
            target = Path(work) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        _git(env, "add", "--all", "--", *files)
        _git(env, "commit", "--quiet", "--allow-empty", "--message", message)
        return _git(env, "rev-parse", "HEAD").strip()


def _git_daemon() -> str:
    """``git-daemon`` itself: ``git daemon`` would run it as a child, so the sandbox's process would not be
    the one listening (nor the one its fault switches pause)."""
    return str(Path(_git(os.environ, "--exec-path").strip()) / "git-daemon")


def _git(env: Mapping[str, str], *args: str) -> str:
    completed = subprocess.run(["git", *args], env=dict(env), capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SandboxError(f"git {' '.join(args[:2])} failed: {completed.stderr.strip()[-500:]}")
    return completed.stdout


def application_manifest(
    name: str, repository: GitRepository, *, path: str, namespace: str, revision: str = "main"
) -> dict[str, Any]:
    """An Application deploying ``path`` of the repository at ``revision`` into ``namespace`` of this
    cluster, created if missing; synced only when asked (set ``operation``, as ``argocd app sync`` does)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": ARGOCD_NAMESPACE},
        "spec": {
            "project": "default",
            "source": {"repoURL": repository.url, "path": path, "targetRevision": revision},
            "destination": {"server": IN_CLUSTER, "namespace": namespace},
            "syncPolicy": {"syncOptions": list(SYNC_OPTIONS)},
        },
    }


def sync_operation(revision: str) -> dict[str, Any]:
    """The ``operation`` an Application is patched with to sync it at ``revision`` (what ``argocd app sync``
    sets through Argo CD's API server, with the Application's sync options: the controller reads the
    operation's, not the Application's)."""
    sync = {"revision": revision, "syncOptions": list(SYNC_OPTIONS)}
    return {"operation": {"initiatedBy": {"username": "kibertas-async-sandbox"}, "sync": sync}}


@dataclass
class _Ports:
    redis: int
    git: int
    repo_server: int
    repo_server_metrics: int
    controller_metrics: int


class ArgoCdAddon:
    """Per cluster: Argo CD's CRDs and settings, Redis, a git daemon, the repo server and the controller."""

    name = "argocd"

    def __init__(self) -> None:
        self._ports: dict[str, _Ports] = {}
        self._socket_dirs: dict[str, Path] = {}

    def prepare(self, progress: Callable[[str], None]) -> None:
        """Build Argo CD (the first time only) and check Redis and git are installed."""
        for command, package in ((REDIS_SERVER, "redis-server"), ("git", "git")):
            if shutil.which(command) is None:
                raise SandboxError(f"the Argo CD add-on needs {command}: apt-get install {package}")
        build_argocd(progress)
        module_directory(ARGOCD_MODULE, ARGOCD_VERSION)

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """Install the CRDs, the settings and the project; create the repository; return the processes."""
        self._install(context)
        ports = self._ports[context.cluster_name] = _Ports(*(context.allocate_port() for _ in range(5)))
        git_root = context.work_dir / "git"
        repository = GitRepository(git_root / REPOSITORY_NAME, f"git://127.0.0.1:{ports.git}/{REPOSITORY_NAME}")
        if not repository.path.exists():
            git_root.mkdir(parents=True, exist_ok=True)
            _git(os.environ, "init", "--quiet", "--bare", "--initial-branch=main", str(repository.path))
        (context.work_dir / _URL_FILE).write_text(f"{repository.url}\n", encoding="utf-8")
        binary = str(build_argocd())
        data = context.work_dir / "data"
        for directory in ("tls", "ssh", "gpg", "home", "tmp", "plugins"):
            (data / directory).mkdir(parents=True, exist_ok=True)
        common = {
            "ARGOCD_TLS_DATA_PATH": str(data / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(data / "ssh"),
            "ARGOCD_GNUPGHOME": str(data / "gpg"),
            "ARGOCD_GPG_ENABLED": "false",
            "HOME": str(data / "home"),
            "TMPDIR": str(data / "tmp"),
        }
        repo_server_env = {
            **common,
            "ARGOCD_BINARY_NAME": REPO_SERVER_PROCESS,
            "ARGOCD_ASK_PASS_SOCK": str(self._socket_dir(context) / "askpass.sock"),
            "ARGOCD_PLUGINSOCKFILEPATH": str(data / "plugins"),
        }
        controller_env = {
            **common,
            "ARGOCD_BINARY_NAME": CONTROLLER_PROCESS,
            # The in-cluster destination through this kubeconfig instead of a pod's service account.
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "KUBECONFIG": str(context.kubeconfig),
        }
        cluster = context.cluster_name
        return [
            ProcessSpec(
                f"{cluster}/redis",
                (
                    shutil.which(REDIS_SERVER) or REDIS_SERVER,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(ports.redis),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(context.work_dir),
                ),
                context.work_dir / "redis.log",
            ),
            ProcessSpec(
                f"{cluster}/git-daemon",
                (
                    _git_daemon(),
                    "--listen=127.0.0.1",
                    f"--port={ports.git}",
                    f"--base-path={git_root}",
                    "--export-all",
                    "--reuseaddr",
                    "--informative-errors",
                    str(git_root),
                ),
                context.work_dir / "git-daemon.log",
            ),
            ProcessSpec(
                f"{cluster}/{REPO_SERVER_PROCESS}",
                (
                    binary,
                    "--address=127.0.0.1",
                    f"--port={ports.repo_server}",
                    "--metrics-address=127.0.0.1",
                    f"--metrics-port={ports.repo_server_metrics}",
                    f"--redis=127.0.0.1:{ports.redis}",
                    "--loglevel=info",
                ),
                context.work_dir / "repo-server.log",
                repo_server_env,
            ),
            ProcessSpec(
                f"{cluster}/{CONTROLLER_PROCESS}",
                (
                    binary,
                    f"--kubeconfig={context.kubeconfig}",
                    f"--namespace={ARGOCD_NAMESPACE}",
                    f"--redis=127.0.0.1:{ports.redis}",
                    f"--repo-server=127.0.0.1:{ports.repo_server}",
                    f"--metrics-port={ports.controller_metrics}",
                    "--loglevel=info",
                ),
                context.work_dir / "application-controller.log",
                controller_env,
            ),
        ]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Return once Redis, the git daemon and the repo server accept connections and the controller's
        health endpoint answers."""
        timeout = max(timeout, _READY_TIMEOUT)
        deadline = time.monotonic() + timeout
        ports = self._ports[context.cluster_name]
        for what, port, log in (
            ("Redis", ports.redis, "redis.log"),
            ("git daemon", ports.git, "git-daemon.log"),
            ("Argo CD repo server", ports.repo_server, "repo-server.log"),
        ):
            wait_until(
                functools.partial(_accepts, port),
                deadline,
                functools.partial(_not_ready, context, what, timeout, context.work_dir / log),
            )
        health = f"http://127.0.0.1:{ports.controller_metrics}/healthz"
        wait_until(
            functools.partial(answers_http_ok, health),
            deadline,
            functools.partial(
                _not_ready,
                context,
                "Argo CD application controller",
                timeout,
                context.work_dir / "application-controller.log",
            ),
        )

    def stop(self, context: AddonContext) -> None:
        """Remove the short directory of the repo server's socket, if it needed one outside the work dir."""
        socket_dir = self._socket_dirs.pop(context.cluster_name, None)
        if socket_dir is not None and not socket_dir.is_relative_to(context.work_dir):
            shutil.rmtree(socket_dir, ignore_errors=True)

    def _install(self, context: AddonContext) -> None:
        install_crds(context, load_crds(), _READY_TIMEOUT)
        deadline = time.monotonic() + _READY_TIMEOUT
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ARGOCD_NAMESPACE}}
        create_once(context.api, "/api/v1/namespaces", namespace, context.cluster_name)
        for path, manifest in _settings():
            create_once(context.api, path, manifest, context.cluster_name)
        project_path = f"/apis/argoproj.io/v1alpha1/namespaces/{ARGOCD_NAMESPACE}/appprojects"
        # The API server serves a new CRD's paths a moment after Established: retry until it takes it.
        wait_until(
            functools.partial(created_when_served, context.api, project_path, _default_project()),
            deadline,
            f"{context.cluster_name}: could not create the AppProject default within {_READY_TIMEOUT:.0f}s",
        )

    def _socket_dir(self, context: AddonContext) -> Path:
        """A directory for the repo server's askpass socket: the work dir, or a short one when that is too long."""
        directory = context.work_dir / "data"
        if len(str(directory / "askpass.sock")) > _SOCKET_PATH_LIMIT:
            directory = Path(tempfile.mkdtemp(prefix="kibertas-argocd-"))
        self._socket_dirs[context.cluster_name] = directory
        return directory


def _settings() -> list[tuple[str, dict[str, Any]]]:
    """``argocd-cm`` (defaults) and ``argocd-secret`` (a random server key: Argo CD's settings need one)."""
    base = f"/api/v1/namespaces/{ARGOCD_NAMESPACE}"
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "labels": _PART_OF},
        "data": {},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "argocd-secret", "labels": _PART_OF},
        "stringData": {"server.secretkey": secrets.token_urlsafe(32)},
    }
    return [(f"{base}/configmaps", config_map), (f"{base}/secrets", secret)]


def _default_project() -> dict[str, Any]:
    """The AppProject ``default`` as Argo CD's API server creates it: any source, destination and kind."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "default", "namespace": ARGOCD_NAMESPACE},
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{"server": "*", "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    }


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _not_ready(context: AddonContext, what: str, timeout: float, log_file: Path) -> str:
    return f"{context.cluster_name}: {what} not ready after {timeout:.0f}s; {log_tail(log_file)}"
