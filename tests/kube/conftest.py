"""Fixtures of the Kubernetes layer's tests: a client straight to a sandbox API server, a namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kibertas_async.kube import ClusterTarget, KubeClient, connect
from kibertas_async.kube.resources import NAMESPACES
from kibertas_async.sandbox.runner import SandboxCluster


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def direct(sandbox_cluster: SandboxCluster) -> AsyncIterator[KubeClient]:
    """A client straight to the API server (the test's own hands, not what is under test)."""
    target = ClusterTarget(
        sandbox_cluster.name, context=sandbox_cluster.context, kubeconfig=str(sandbox_cluster.kubeconfig)
    )
    async with await connect(target) as kube:
        yield kube


@pytest.fixture
async def namespace(direct: KubeClient) -> AsyncIterator[str]:
    """A namespace of the test's own, deleted afterwards."""
    created = await direct.create(NAMESPACES, {"metadata": {"generateName": "kube-test-"}})
    name = str(created["metadata"]["name"])
    yield name
    await direct.delete(NAMESPACES, name)
