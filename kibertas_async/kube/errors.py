"""Errors of the Kubernetes layer, free of any client library's types."""

from __future__ import annotations

from kibertas_async.errors import KibertasError


class KubeApiError(KibertasError):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str, *, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class KubeUnavailable(KibertasError):
    """The API server could not be reached (connection refused, reset, timed out)."""


class ClusterUnreachable(KibertasError):
    """A cluster could not be connected to at the start of the run."""
