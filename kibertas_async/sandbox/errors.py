"""Errors of the sandbox (all are :class:`kibertas_async.errors.KibertasError`)."""

from __future__ import annotations

from kibertas_async.errors import KibertasError


class SandboxError(KibertasError):
    """A sandbox process failed to start or did not become ready; the message quotes its log."""


class SandboxBuildError(SandboxError):
    """A component could not be built; the message names the module and ends with go's own error."""
