"""Building an add-on's Go command from the Go module proxy, cached like the sandbox's own binaries.

For add-on authors: ``go_command("external-dns", "sigs.k8s.io/external-dns", "v0.22.0",
"sigs.k8s.io/external-dns")`` returns the path of the built binary, building it once into
``<cache>/bin/<name>-<version>/`` (the cache root is ``$KIBERTAS_ASYNC_CACHE`` or
``~/.cache/kibertas-async``), with the module and build caches shared with every other build.
"""

from __future__ import annotations

from pathlib import Path

from kibertas_async.sandbox.build import Progress, _GoBuild, _GoToolchain, _print_progress, cache_root


def go_command_path(name: str, version: str) -> Path:
    """Where :func:`go_command` puts (or has put) the binary."""
    return cache_root() / "bin" / f"{name}-{version}" / name


def go_command(
    name: str,
    module: str,
    version: str,
    package: str,
    *,
    ldflags: str = "-s -w",
    progress: Progress | None = None,
) -> Path:
    """Build ``package`` (a main package of ``module`` at ``version``) into the cache; return its path.

    Instant when the binary exists. :raises SandboxBuildError: when the Go build fails (the message
    names the module and ends with go's last lines).
    """
    path = go_command_path(name, version)
    build = _GoBuild(
        component=f"{name} {version}",
        wrapper_dir=cache_root() / "src" / f"{name}-{version}",
        module_name=f"kibertasbuild/{name}",
        required_module=module,
        required_version=version,
        packages=(package,),
        binary_names=(name,),
        out_dir=path.parent,
        ldflags=ldflags,
    )
    if not path.exists():
        build.run(_GoToolchain.find(), progress or _print_progress)
    return path
