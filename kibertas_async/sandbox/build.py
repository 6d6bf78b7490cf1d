"""Build the sandbox's server binaries from the Go module proxy, or find them in a directory.

Each component is built from a small *wrapper module* under ``<cache>/src/`` that requires the real
module at a pinned version, because ``go install module@version`` refuses modules whose go.mod has
``replace`` directives (Kubernetes and etcd both have them). Module cache, build cache and binaries all
live under the cache root (``~/.cache/kibertas-async``, or ``$KIBERTAS_ASYNC_CACHE``), keyed by
version, so a second build is a no-op and two Kubernetes versions can sit side by side.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from kibertas_async.errors import UsageError
from kibertas_async.sandbox.errors import SandboxBuildError
from kibertas_async.sandbox.versions import (
    DEFAULT_KUBERNETES_VERSION,
    ETCD_VERSION,
    KWOK_VERSION,
    normalize_kubernetes_version,
    staging_module_version,
)

CACHE_ENV = "KIBERTAS_ASYNC_CACHE"
"""Environment variable that moves the cache root away from ``~/.cache/kibertas-async``."""

BIN_DIR_ENV = "KIBERTAS_ASYNC_SANDBOX_BIN_DIR"
"""Environment variable naming a directory with ready-made binaries; the Go build is then skipped."""

KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

_PROGRESS_INTERVAL = 30.0
_ERROR_TAIL_LINES = 25
_STAGING_REPLACE = re.compile(r"^\s*(?:replace\s+)?(k8s\.io/[\w.\-/]+)\s+=>\s+\./staging/", re.MULTILINE)

Progress = Callable[[str], None]
"""Receives one human-readable progress line at a time."""


@dataclass(frozen=True)
class SandboxBinaries:
    """Paths of every executable the sandbox runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path

    @classmethod
    def in_directory(cls, directory: Path) -> SandboxBinaries:
        """Binaries that all sit in one flat directory (envtest's layout, or a release download)."""
        return cls(
            etcd=directory / "etcd",
            kube_apiserver=directory / "kube-apiserver",
            kube_controller_manager=directory / "kube-controller-manager",
            kube_scheduler=directory / "kube-scheduler",
            kubectl=directory / "kubectl",
            kwok=directory / "kwok",
        )

    def all(self) -> tuple[Path, ...]:
        """Every binary, in a stable order."""
        return (
            self.etcd,
            self.kube_apiserver,
            self.kube_controller_manager,
            self.kube_scheduler,
            self.kubectl,
            self.kwok,
        )

    def missing(self) -> list[Path]:
        """The binaries that do not exist or are not executable."""
        return [path for path in self.all() if not os.access(path, os.X_OK)]


def cache_root() -> Path:
    """The directory holding module cache, build cache, wrapper modules and built binaries."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "kibertas-async"


def binaries_for(kubernetes_version: str = DEFAULT_KUBERNETES_VERSION, bin_dir: Path | None = None) -> SandboxBinaries:
    """Where the binaries for ``kubernetes_version`` are (or will be, once built).

    ``bin_dir`` (or ``$KIBERTAS_ASYNC_SANDBOX_BIN_DIR``) wins over the build cache.
    """
    if bin_dir is None and os.environ.get(BIN_DIR_ENV):
        bin_dir = Path(os.environ[BIN_DIR_ENV])
    if bin_dir is not None:
        return SandboxBinaries.in_directory(bin_dir.expanduser())
    version = normalize_kubernetes_version(kubernetes_version)
    bin_root = cache_root() / "bin"
    kubernetes_dir = bin_root / f"kubernetes-v{version}"
    return SandboxBinaries(
        etcd=bin_root / f"etcd-v{ETCD_VERSION}" / "etcd",
        kube_apiserver=kubernetes_dir / "kube-apiserver",
        kube_controller_manager=kubernetes_dir / "kube-controller-manager",
        kube_scheduler=kubernetes_dir / "kube-scheduler",
        kubectl=kubernetes_dir / "kubectl",
        kwok=bin_root / f"kwok-v{KWOK_VERSION}" / "kwok",
    )


def ensure_binaries(
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    *,
    bin_dir: Path | None = None,
    progress: Progress | None = None,
) -> SandboxBinaries:
    """Return the binaries for ``kubernetes_version``, building whatever is missing.

    Returns at once when every binary exists. With ``bin_dir`` (or ``$KIBERTAS_ASYNC_SANDBOX_BIN_DIR``)
    nothing is built: the directory must already hold all six binaries.

    :raises UsageError: a given binary directory lacks some binaries.
    :raises SandboxBuildError: a Go build failed.
    """
    binaries = binaries_for(kubernetes_version, bin_dir)
    missing = binaries.missing()
    if not missing:
        return binaries
    if bin_dir is not None or os.environ.get(BIN_DIR_ENV):
        names = ", ".join(path.name for path in missing)
        raise UsageError(f"{missing[0].parent} lacks {names}; put every sandbox binary there or drop --bin-dir")
    report = progress or _print_progress
    version = normalize_kubernetes_version(kubernetes_version)
    go = _GoToolchain.find()
    for build in (_etcd_build(), _kwok_build(), _kubernetes_build(version)):
        build.run(go, report)
    return binaries


def _print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class _GoToolchain:
    """The local ``go`` command with an environment that keeps every cache under the cache root."""

    executable: str
    env: dict[str, str]
    language_version: str

    @classmethod
    def find(cls) -> _GoToolchain:
        executable = shutil.which("go") or "/usr/local/go/bin/go"
        if not os.access(executable, os.X_OK):
            raise UsageError("no `go` command found; install Go 1.26+ or give prebuilt binaries with --bin-dir")
        root = cache_root()
        env = {
            **os.environ,
            "GOMODCACHE": str(root / "go" / "mod"),
            "GOCACHE": str(root / "go" / "build"),
            # -mod=mod lets go fill in go.sum; GOTOOLCHAIN=local stops go from downloading another
            # toolchain when a module asks for a newer patch release; no cgo keeps binaries static.
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
            "GOWORK": "off",
        }
        # `go 1.26` in the wrapper's go.mod, from "go1.26.8": the same line on every patch release.
        full_version = subprocess.run(
            [executable, "env", "GOVERSION"], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        language_version = ".".join(full_version.removeprefix("go").split(".")[:2])
        return cls(executable, env, language_version)


@dataclass(frozen=True)
class _GoBuild:
    """One wrapper module and the commands it builds into one versioned binary directory."""

    component: str
    wrapper_dir: Path
    module_name: str
    required_module: str
    required_version: str
    packages: tuple[str, ...]
    binary_names: tuple[str, ...]
    out_dir: Path
    ldflags: str = "-s -w"
    staging_replaces: bool = False

    def run(self, go: _GoToolchain, progress: Progress) -> None:
        if all(os.access(self.out_dir / name, os.X_OK) for name in self.binary_names):
            progress(f"{self.component}: already built in {self.out_dir}")
            return
        self.wrapper_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(self.wrapper_dir.with_suffix(".lock"), self.component, progress):
            # Another process may have finished the same build while we waited for the lock.
            if all(os.access(self.out_dir / name, os.X_OK) for name in self.binary_names):
                progress(f"{self.component}: built meanwhile by another process")
                return
            started = time.monotonic()
            progress(f"{self.component}: building {', '.join(self.binary_names)} from {self.required_module}")
            self._write_wrapper(go, progress)
            self._go(go, progress, "mod tidy", ["mod", "tidy", "-e"])
            self._build(go, progress)
            progress(f"{self.component}: done in {_elapsed(started)}")

    def _write_wrapper(self, go: _GoToolchain, progress: Progress) -> None:
        replaces = ""
        if self.staging_replaces:
            # A bare module first, so `go mod download` runs inside our own module, never in whatever
            # go.mod (possibly stale or broken) a previous attempt left here.
            (self.wrapper_dir / "go.mod").write_text(f"module {self.module_name}\n\ngo {go.language_version}\n")
            replaces = self._staging_replace_block(go, progress)
        (self.wrapper_dir / "go.mod").write_text(
            f"module {self.module_name}\n\ngo {go.language_version}\n\n"
            f"require {self.required_module} {self.required_version}\n{replaces}"
        )
        # Without a Go file importing the commands, `go mod tidy` drops the require line and then
        # resolves the newest k8s.io/kubernetes instead of the pinned one.
        imports = "".join(f'\t_ "{package}"\n' for package in self.packages)
        (self.wrapper_dir / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n")

    def _staging_replace_block(self, go: _GoToolchain, progress: Progress) -> str:
        """``replace`` lines pinning every staging module that k8s.io/kubernetes points at ./staging."""
        query = f"{self.required_module}@{self.required_version}"
        output = self._go(go, progress, "download module", ["mod", "download", "-json", query])
        go_mod = Path(json.loads(output)["GoMod"]).read_text()
        modules = sorted(set(_STAGING_REPLACE.findall(go_mod)))
        if not modules:
            raise SandboxBuildError(f"{query}: its go.mod has no ./staging replaces; the recipe no longer fits")
        staging_version = staging_module_version(self.required_version)
        lines = "".join(f"\t{module} => {module} {staging_version}\n" for module in modules)
        return f"\nreplace (\n{lines})\n"

    def _build(self, go: _GoToolchain, progress: Progress) -> None:
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        # Build beside the final directory and move the results in, so an interrupted build never
        # leaves a truncated binary that would later pass for a finished one.
        with tempfile.TemporaryDirectory(dir=self.out_dir.parent, prefix=f".{self.out_dir.name}-") as scratch:
            target = f"{scratch}/" if len(self.packages) > 1 else f"{scratch}/{self.binary_names[0]}"
            self._go(
                go,
                progress,
                "go build",
                ["build", "-trimpath", "-ldflags", self.ldflags, "-o", target, *self.packages],
            )
            self.out_dir.mkdir(parents=True, exist_ok=True)
            for name in self.binary_names:
                os.replace(Path(scratch) / name, self.out_dir / name)

    def _go(self, go: _GoToolchain, progress: Progress, step: str, args: Sequence[str]) -> str:
        """Run one go command, reporting elapsed time while it runs; return its stdout."""
        log_path = self.wrapper_dir / "build.log"
        started = time.monotonic()
        progress(f"{self.component}: {step} ...")
        with open(log_path, "ab") as log, tempfile.TemporaryFile() as stdout:
            log.write(f"\n$ go {' '.join(args)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                [go.executable, *args],
                cwd=self.wrapper_dir,
                env=go.env,
                stdout=stdout,
                stderr=log,
                start_new_session=True,  # so an interrupt can stop go and every compiler it spawned
            )
            try:
                while True:
                    try:
                        returncode = process.wait(timeout=_PROGRESS_INTERVAL)
                        break
                    except subprocess.TimeoutExpired:
                        progress(f"{self.component}: {step} still running, {_elapsed(started)} so far")
            except BaseException:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise
            stdout.seek(0)
            output = stdout.read().decode(errors="replace")
        if returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-_ERROR_TAIL_LINES:])
            raise SandboxBuildError(
                f"building {self.component} failed: `go {' '.join(args)}` for module "
                f"{self.required_module}@{self.required_version} exited with {returncode}. "
                f"Last lines of go's output (full log: {log_path}):\n{tail}"
            )
        progress(f"{self.component}: {step} took {_elapsed(started)}")
        return output


@contextlib.contextmanager
def _exclusive_lock(path: Path, component: str, progress: Progress) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` so two processes never build the same thing at once."""
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"{component}: waiting for another process building it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _elapsed(started: float) -> str:
    seconds = int(time.monotonic() - started)
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _kubernetes_ldflags(version: str) -> str:
    """Version stamps; without them ``/version`` and ``kubectl version`` report v0.0.0."""
    major, minor, _patch = version.split(".")
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion=v{version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
            # Fixed, so the link step (and the binary) is reproducible.
            f"-X {package}.buildDate=2026-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def _kubernetes_build(version: str) -> _GoBuild:
    root = cache_root()
    return _GoBuild(
        component=f"kubernetes v{version}",
        wrapper_dir=root / "src" / f"k8s-v{version}",
        module_name="kibertasbuild/kubernetes",
        required_module="k8s.io/kubernetes",
        required_version=f"v{version}",
        packages=tuple(f"k8s.io/kubernetes/cmd/{command}" for command in KUBERNETES_COMMANDS),
        binary_names=KUBERNETES_COMMANDS,
        out_dir=root / "bin" / f"kubernetes-v{version}",
        ldflags=_kubernetes_ldflags(version),
        staging_replaces=True,
    )


def _etcd_build() -> _GoBuild:
    root = cache_root()
    # etcd's go.mod replaces its sibling modules with relative paths, but it also requires them at the
    # same version, and replaces in a dependency are ignored: a plain require is enough.
    return _GoBuild(
        component=f"etcd v{ETCD_VERSION}",
        wrapper_dir=root / "src" / f"etcd-v{ETCD_VERSION}",
        module_name="kibertasbuild/etcd",
        required_module="go.etcd.io/etcd/server/v3",
        required_version=f"v{ETCD_VERSION}",
        packages=("go.etcd.io/etcd/server/v3",),
        binary_names=("etcd",),
        out_dir=root / "bin" / f"etcd-v{ETCD_VERSION}",
    )


def _kwok_build() -> _GoBuild:
    root = cache_root()
    return _GoBuild(
        component=f"kwok v{KWOK_VERSION}",
        wrapper_dir=root / "src" / f"kwok-v{KWOK_VERSION}",
        module_name="kibertasbuild/kwok",
        required_module="sigs.k8s.io/kwok",
        required_version=f"v{KWOK_VERSION}",
        packages=("sigs.k8s.io/kwok/cmd/kwok",),
        binary_names=("kwok",),
        out_dir=root / "bin" / f"kwok-v{KWOK_VERSION}",
    )
