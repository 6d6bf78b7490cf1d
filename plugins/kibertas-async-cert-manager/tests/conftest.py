"""Fixtures: the real CLI run in-process on both sandbox clusters at once, and the issuer's fault switch."""

from __future__ import annotations

import contextlib
import gc
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kibertas_async.cli import main
from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import TEST_CLUSTER_NAMES
from kibertas_async_cert_manager.resources import CERTIFICATES, ISSUERS
from kibertas_async_cert_manager.sandbox.addon import CLUSTER_RESOURCE_NAMESPACE, CONTROLLER_PROCESS
from kibertas_async_cert_manager.sandbox.issuer import FAULT_CONFIGMAP, FAULT_KEY, Fault

MANAGED_BY = "app.kubernetes.io/managed-by=kibertas-async"

RunCheck = Callable[..., dict[str, Any]]
"""``run_check("--cert-manager-step-timeout", "3s")``: the JSON report of one run on both clusters."""
LeafFault = Callable[[Fault, str], contextlib.AbstractContextManager[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def run_check(sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> RunCheck:
    """Run the ``cert-manager`` check through the CLI on both sandbox clusters at once; after each run,
    assert that nothing labelled by kibertas-async is left in either cluster."""
    runs = iter(range(1, 1000))

    def run(*options: str) -> dict[str, Any]:
        report_path = tmp_path / f"report-{next(runs)}.json"
        argv = [
            "run",
            "cert-manager",
            "--kubeconfig",
            str(sandbox.kubeconfig),
            "--clusters",
            ",".join(TEST_CLUSTER_NAMES),
            "--report-json",
            str(report_path),
            "--log-format",
            "json",
            *options,
        ]
        main(argv)
        capsys.readouterr()
        collect_unclosed_tls_sockets()
        assert_nothing_left(sandbox)
        report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
        return report

    return run


def collect_unclosed_tls_sockets() -> None:
    """Collect, without failing the test, the sockets asyncio leaves when its loop ends mid TLS shutdown.

    A core issue, not the check's: the engine closes its aiohttp sessions and returns at once, and on
    Python 3.11 the TLS transports of idle keep-alive connections still need a few loop iterations to
    close their sockets (aiohttp's documented "graceful shutdown" caveat). Their ResourceWarning would
    otherwise surface as an unraisable warning in whichever test happens to trigger the collection.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="unclosed", category=ResourceWarning)
        gc.collect()


@pytest.fixture
def nothing_left(sandbox: Sandbox) -> Callable[[], None]:
    """``nothing_left()`` asserts that no object labelled by kibertas-async is left in either cluster."""
    return lambda: assert_nothing_left(sandbox)


def assert_nothing_left(sandbox: Sandbox) -> None:
    """No namespace, Certificate, Issuer or Secret carrying our managed-by label in any cluster."""
    for name in TEST_CLUSTER_NAMES:
        api = sandbox.cluster(name).api()
        for path in ("/api/v1/namespaces", CERTIFICATES.path(), ISSUERS.path(), "/api/v1/secrets"):
            items = api.get(f"{path}?labelSelector={MANAGED_BY}")["items"]
            left = [f"{item['metadata'].get('namespace', '')}/{item['metadata']['name']}" for item in items]
            assert not left, f"{name}: left behind at {path}: {left}"


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
