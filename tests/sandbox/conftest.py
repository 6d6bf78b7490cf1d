"""Fixtures for the sandbox's own tests (the ``sandbox`` fixture comes from kibertas_async.testing)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.runner import SandboxCluster


@pytest.fixture
def namespace(sandbox_cluster: SandboxCluster) -> Iterator[str]:
    """A fresh namespace on ``sandbox-1``, deleted (not awaited) after the test."""
    name = f"t-{secrets.token_hex(4)}"
    api = sandbox_cluster.api()
    api.create("/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    try:
        api.request("DELETE", f"/api/v1/namespaces/{name}")
    except ApiError as error:
        if error.status != 404:  # a test may delete it itself
            raise
