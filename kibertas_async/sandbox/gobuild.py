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
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kibertas_async.sandbox.build import Progress, _GoBuild, _GoToolchain, _print_progress, cache_root


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
