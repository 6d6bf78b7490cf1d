"""Local Kubernetes clusters for tests, demos and plugin authors, built from Go modules.

Public names (imported on first use, so that importing :mod:`kibertas_async.sandbox.cli` for the CLI's
parser stays cheap)::

    Sandbox, SandboxCluster, SandboxConfig      runner: start, find, describe and stop a sandbox
    SandboxBinaries, ensure_binaries            build: build or locate the binaries
    SandboxAddon, AddonContext                  addons: the seam for per-cluster extras
    ProcessSpec                                 processes: what an add-on asks the sandbox to run
    SandboxError, SandboxBuildError             errors (both are kibertas_async.errors.KibertasError)

See docs/sandbox.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kibertas_async.sandbox.addons import AddonContext, SandboxAddon
    from kibertas_async.sandbox.build import SandboxBinaries, ensure_binaries
    from kibertas_async.sandbox.errors import SandboxBuildError, SandboxError
    from kibertas_async.sandbox.processes import ProcessSpec
    from kibertas_async.sandbox.runner import Sandbox, SandboxCluster, SandboxConfig

_EXPORTS = {
    "Sandbox": "kibertas_async.sandbox.runner",
    "SandboxCluster": "kibertas_async.sandbox.runner",
    "SandboxConfig": "kibertas_async.sandbox.runner",
    "SandboxBinaries": "kibertas_async.sandbox.build",
    "ensure_binaries": "kibertas_async.sandbox.build",
    "SandboxAddon": "kibertas_async.sandbox.addons",
    "AddonContext": "kibertas_async.sandbox.addons",
    "ProcessSpec": "kibertas_async.sandbox.processes",
    "SandboxError": "kibertas_async.sandbox.errors",
    "SandboxBuildError": "kibertas_async.sandbox.errors",
}

__all__ = [
    "AddonContext",
    "ProcessSpec",
    "Sandbox",
    "SandboxAddon",
    "SandboxBinaries",
    "SandboxBuildError",
    "SandboxCluster",
    "SandboxConfig",
    "SandboxError",
    "ensure_binaries",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
