"""Test helpers for kibertas-async and its plugins: real Kubernetes clusters as pytest fixtures.

Installing kibertas-async registers the pytest plugin :mod:`kibertas_async.testing.plugin` (entry point
group ``pytest11``), which provides:

``sandbox`` (session scope)
    A :class:`~kibertas_async.sandbox.runner.Sandbox` with two clusters, ``sandbox-1`` and ``sandbox-2``:
    each a real kube-apiserver (RBAC on), controller-manager and scheduler with four kwok nodes, all
    on 127.0.0.1. ``sandbox.kubeconfig`` has one context per cluster; ``sandbox.cluster("sandbox-1")``
    gives a cluster's endpoint, credentials and fault switches (``restart_apiserver()``,
    ``unreachable()``, ...). It runs from its own state directory with its own ports, so a sandbox
    the user started with ``kibertas-async sandbox up`` is never touched.

``sandbox_cluster``
    ``sandbox.cluster("sandbox-1")``.

Tests using these fixtures are marked ``sandbox`` automatically (deselect them with ``-m "not sandbox"``).
When the binaries are missing the fixture skips with instructions, except when ``$CI`` is true: then
it fails, so a CI run never passes without having run the sandbox tests. Every sandbox process is
stopped at the end of the session, and killed by the kernel if the test process itself dies.

The helpers below work with any cluster of a sandbox, in tests or scripts.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kibertas_async.sandbox.runner import Sandbox, SandboxCluster, SandboxConfig

__all__ = ["TEST_CLUSTER_NAMES", "api_client", "ci_requires_sandbox", "kubectl", "start_test_sandbox"]

TEST_CLUSTER_NAMES = ("sandbox-1", "sandbox-2")
"""The clusters the ``sandbox`` fixture starts."""


def ci_requires_sandbox() -> bool:
    """Whether ``$CI`` is set to a true value: missing sandbox binaries are then an error, not a skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def start_test_sandbox(state_dir: Path, cluster_names: tuple[str, ...] = TEST_CLUSTER_NAMES) -> Sandbox:
    """Start a sandbox for tests: private ``state_dir`` and kubeconfig, processes bound to our life.

    The kubeconfig is written to ``state_dir/kubeconfig``. Stop it with :meth:`Sandbox.down`.
    """
    config = SandboxConfig(cluster_names=cluster_names, state_dir=state_dir, kubeconfig=state_dir / "kubeconfig")
    return Sandbox.start(config, die_with_parent=True)


def kubectl(
    sandbox: Sandbox, cluster: str | SandboxCluster, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the sandbox's own kubectl against ``cluster``; return its result (text output).

    :raises subprocess.CalledProcessError: when kubectl fails and ``check`` is true.
    """
    target = sandbox.cluster(cluster) if isinstance(cluster, str) else cluster
    argv = [str(sandbox.binaries.kubectl), f"--kubeconfig={target.kubeconfig}", f"--context={target.context}"]
    return subprocess.run([*argv, *args], input=input, capture_output=True, text=True, check=check, timeout=120)


@contextlib.asynccontextmanager
async def api_client(cluster: SandboxCluster) -> AsyncIterator[Any]:
    """A ``kubernetes_asyncio.client.ApiClient`` for ``cluster``, closed on exit."""
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(cluster.kubeconfig), context=cluster.context, client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api:
        yield api
