"""Fixtures: the cert-manager check run through the kit's ``check_runner`` on both sandbox clusters at once,
and the issuer's fault switch."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner, RunResult
from kibertas_async_cert_manager.sandbox.faults import Fault, issuer_fault

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


@pytest.fixture
def leaf_fault(sandbox: Sandbox) -> LeafFault:
    """``with leaf_fault(Fault.EXPIRED, "sandbox-1"):`` — that cluster's issuer misissues leaf certificates."""

    def switch(fault: Fault, cluster: str) -> contextlib.AbstractContextManager[None]:
        return issuer_fault(sandbox.cluster(cluster), fault)

    return switch
