"""Building an add-on's Go command from the Go module proxy, cached like the sandbox's own binaries.

For add-on authors: ``go_command("external-dns", "sigs.k8s.io/external-dns", "v0.22.0",
"sigs.k8s.io/external-dns")`` returns the path of the built binary, building it once into
``<cache>/bin/<name>-<version>/`` (the cache root is ``$KIBERTAS_ASYNC_CACHE`` or
``~/.cache/kibertas-async``), with the module and build caches shared with every other build.

When a project's ``main`` cannot be built from the proxy (cert-manager's since v1.12 is a nested
module with a relative ``replace``), give a main of your own: ``sources={"main.go": text}`` are files
of the wrapper module, and ``package="."`` builds the wrapper itself against ``module`` at ``version``.
``replaces`` are extra ``replace`` lines (``"a/b => a/b v1.2.3"``) for the wrapper's ``go.mod``.
Either one adds a digest of them to the cache key, so an edited main is rebuilt, not reused.

:func:`module_directory` gives a module's files (CRDs, its ``go.mod``) from the same module cache, and
:func:`patched_module` a copy with a few exact text edits (Karpenter's and Argo CD's metrics servers
listen on every interface with no flag to change it), to build through a ``replace`` line.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kibertas_async.sandbox.build import (
    Progress,
    _exclusive_lock,
    _GoBuild,
    _GoToolchain,
    _print_progress,
    cache_root,
)
from kibertas_async.sandbox.errors import SandboxError

_DOWNLOAD_TIMEOUT = 300.0


def go_command_path(
    name: str, version: str, *, sources: Mapping[str, str] | None = None, replaces: Sequence[str] = ()
) -> Path:
    """Where :func:`go_command` puts (or has put) the binary."""
    return cache_root() / "bin" / _build_key(name, version, sources or {}, replaces) / name


def go_command(
    name: str,
    module: str,
    version: str,
    package: str,
    *,
    ldflags: str = "-s -w",
    progress: Progress | None = None,
    sources: Mapping[str, str] | None = None,
    replaces: Sequence[str] = (),
) -> Path:
    """Build ``package`` (a main package of ``module`` at ``version``) into the cache; return its path.

    With ``sources`` (relative path -> file text, written into the wrapper module), ``package`` may be
    one of the wrapper's own packages (``"."`` for its root); the sources must import what they need
    from ``module``, which keeps its ``require`` line through ``go mod tidy``. Instant when the binary
    exists. :raises SandboxBuildError: when the Go build fails (the message names the module and ends
    with go's last lines).
    """
    sources = dict(sources or {})
    key = _build_key(name, version, sources, replaces)
    path = go_command_path(name, version, sources=sources, replaces=replaces)
    build = _WrapperBuild(
        component=f"{name} {version}",
        wrapper_dir=cache_root() / "src" / key,
        module_name=f"kibertasbuild/{name}",
        required_module=module,
        required_version=version,
        packages=(package,),
        binary_names=(name,),
        out_dir=path.parent,
        ldflags=ldflags,
        sources=tuple(sorted(sources.items())),
        replaces=tuple(replaces),
    )
    if not path.exists():
        build.run(_GoToolchain.find(), progress or _print_progress)
    return path


def _build_key(name: str, version: str, sources: Mapping[str, str], replaces: Sequence[str]) -> str:
    """``<name>-<version>``, plus a digest of our own sources and replaces when there are any."""
    if not sources and not replaces:
        return f"{name}-{version}"
    digest = hashlib.sha256()
    for relative, text in sorted(sources.items()):
        digest.update(f"{relative}\0{text}\0".encode())
    for line in replaces:
        digest.update(f"replace\0{line}\0".encode())
    return f"{name}-{version}-{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class _WrapperBuild(_GoBuild):
    """A :class:`_GoBuild` whose wrapper module may hold Go files of its own and extra replaces."""

    sources: tuple[tuple[str, str], ...] = field(default=())
    replaces: tuple[str, ...] = field(default=())

    def _write_wrapper(self, go: _GoToolchain, progress: Progress) -> None:
        if not self.sources and not self.replaces:
            super()._write_wrapper(go, progress)
            return
        replace_block = "".join(f"\t{line}\n" for line in self.replaces)
        (self.wrapper_dir / "go.mod").write_text(
            f"module {self.module_name}\n\ngo {go.language_version}\n\n"
            f"require {self.required_module} {self.required_version}\n"
            + (f"\nreplace (\n{replace_block})\n" if replace_block else "")
        )
        external = [package for package in self.packages if not package.startswith(".")]
        tools = self.wrapper_dir / "tools" / "tools.go"
        if external:
            # In a directory of its own: a `package tools` file beside a `package main` one breaks tidy.
            tools.parent.mkdir(exist_ok=True)
            imports = "".join(f'\t_ "{package}"\n' for package in external)
            tools.write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n")
        for relative, text in self.sources:
            target = self.wrapper_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)


def module_directory(module: str, version: str) -> Path:
    """``module`` at ``version`` in the shared module cache, downloaded from the proxy if it is not there.

    :raises SandboxError: when the download fails (the message ends with go's last words).
    :raises UsageError: when there is no ``go`` command.
    """
    directory = cache_root() / "go" / "mod" / f"{_escaped(module)}@{version}"
    if directory.is_dir():
        return directory
    go = _GoToolchain.find()
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Outside any module, `go mod download module@version` only fills the module cache.
        completed = subprocess.run(
            [go.executable, "mod", "download", "-json", f"{module}@{version}"],
            env=go.env,
            cwd=cache_root() / "go" / "mod",
            capture_output=True,
            text=True,
            timeout=_DOWNLOAD_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SandboxError(f"cannot download {module}@{version}: {error}") from None
    if completed.returncode != 0:
        raise SandboxError(f"go mod download {module}@{version} failed: {completed.stderr.strip()[-500:]}")
    return Path(json.loads(completed.stdout)["Dir"])


def module_replaces(module: str, version: str) -> list[str]:
    """The ``replace`` lines of ``module``'s own ``go.mod`` that point at other module versions (not at
    local directories), as :func:`go_command`'s ``replaces`` wants them: a wrapper that requires the
    module must repeat them, since Go applies only the main module's replaces."""
    lines: list[str] = []
    in_block = False
    for raw in (module_directory(module, version) / "go.mod").read_text(encoding="utf-8").splitlines():
        line = raw.split("//", 1)[0].strip()
        if in_block and line == ")":
            in_block = False
            continue
        if line in ("replace (", "replace("):
            in_block = True
            continue
        if not in_block and line.startswith("replace "):
            line = line.removeprefix("replace ").strip()
        elif not in_block:
            continue
        if "=>" not in line:
            continue
        target = line.split("=>", 1)[1].split()
        if len(target) == 2 and not target[0].startswith((".", "/")):
            lines.append(" ".join(line.split()))
    return lines


@dataclass(frozen=True)
class TextEdit:
    """Replace ``old`` by ``new`` in one file of a module, which must hold ``old`` exactly ``count`` times."""

    path: str
    old: str
    new: str
    count: int = 1


def patched_module(module: str, version: str, patch_name: str, edits: Sequence[TextEdit]) -> Path:
    """A copy of ``module`` at ``version`` with ``edits`` applied, in the cache beside the build wrappers.

    ``patch_name`` names the change: bump it when the edits change (the directory, and so the replace line
    and build key of whatever builds from it, follow it). Build from the copy with a replace line
    ``f"{module} => {path}"``. :raises SandboxError: when a file does not hold its ``old`` text exactly
    ``count`` times (the module changed under the edit: review it, do not force it).
    """
    patched = patched_module_path(module, version, patch_name)
    done = patched / ".kibertas-async-patched"
    if done.exists():
        return patched
    original = module_directory(module, version)
    patched.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(patched.with_suffix(".lock"), f"{module} {version} ({patch_name})", _print_progress):
        if done.exists():  # another process made it while we waited
            return patched
        if patched.exists():
            shutil.rmtree(patched)
        shutil.copytree(original, patched)
        for path in (patched, *patched.rglob("*")):  # the module cache's files and directories are read-only
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
        for edit in edits:
            target = patched / edit.path
            text = target.read_text(encoding="utf-8")
            if text.count(edit.old) != edit.count:
                raise SandboxError(
                    f"{module}@{version} {edit.path}: expected {edit.count} of {edit.old!r} to patch, "
                    f"found {text.count(edit.old)}"
                )
            target.write_text(text.replace(edit.old, edit.new), encoding="utf-8")
        done.write_text(f"{patch_name}\n", encoding="utf-8")
    return patched


def patched_module_path(module: str, version: str, patch_name: str) -> Path:
    """Where :func:`patched_module` puts (or has put) its copy."""
    return cache_root() / "src" / f"{module.rsplit('/', 1)[-1]}-{version}-{patch_name}"


def _escaped(module: str) -> str:
    """The module cache's spelling of a module path: each capital letter as ``!`` and its lower case."""
    return "".join(f"!{char.lower()}" if char.isupper() else char for char in module)
