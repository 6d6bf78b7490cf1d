"""Fixtures: the cert-manager check run through the kit's ``check_runner`` on both sandbox clusters at once,
and the issuer's fault switch."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner, RunResult
from kibertas_async_cert_manager.sandbox.addon import CLUSTER_RESOURCE_NAMESPACE, CONTROLLER_PROCESS
from kibertas_async_cert_manager.sandbox.issuer import FAULT_CONFIGMAP, FAULT_KEY, Fault

RunCheck = Callable[..., RunResult]
"""``run_check("--cert-manager-step-timeout", "3s")``: one run on both clusters."""
LeafFault = Callable[[Fault, str], contextlib.AbstractContextManager[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def run_check(check_runner: CheckRunner, nothing_left: NothingLeft) -> RunCheck:
    """Run the ``cert-manager`` check through the CLI on both sandbox clusters at once (the kit's
    ``check_runner``); after each run, assert that nothing labelled by kibertas-async is left in either
    cluster."""

    def run(*options: str) -> RunResult:
        result = check_runner.run("cert-manager", *options)
        nothing_left()
        return result

    return run


@contextlib.contextmanager
def _leaf_fault(sandbox: Sandbox, fault: Fault, cluster: str) -> Iterator[None]:
    """Make ``cluster``'s issuer misissue leaf certificates while the block runs.

    A real cert-manager cannot be told to misissue: its controller is paused (SIGSTOP) meanwhile, and
    the fault wakes the stand-in issuer, which then does all the issuing on that cluster.
    """
    target = sandbox.cluster(cluster)
    controller = target.processes.get(CONTROLLER_PROCESS)
    api = target.api()
    path = f"/api/v1/namespaces/{CLUSTER_RESOURCE_NAMESPACE}/configmaps"
    if controller is not None:
        controller.pause()
    try:
        api.create(path, {"metadata": {"name": FAULT_CONFIGMAP}, "data": {FAULT_KEY: fault.value}})
        try:
            yield
        finally:
            with contextlib.suppress(ApiError):
                api.request("DELETE", f"{path}/{FAULT_CONFIGMAP}")
    finally:
        if controller is not None:
            controller.resume()


@pytest.fixture
def leaf_fault(sandbox: Sandbox) -> LeafFault:
    """``with leaf_fault(Fault.EXPIRED, "sandbox-1"):`` — that cluster's issuer misissues leaf certificates."""

    def switch(fault: Fault, cluster: str) -> contextlib.AbstractContextManager[None]:
        return _leaf_fault(sandbox, fault, cluster)

    return switch
