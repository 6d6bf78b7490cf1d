"""Fixtures of the Kubernetes layer's tests; the clients are the kit's (``sandbox_client``, ``proxied_client``)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def namespace(sandbox_namespace: str) -> str:
    """A namespace of the test's own on sandbox-1, deleted afterwards (the kit's ``sandbox_namespace``)."""
    return sandbox_namespace
