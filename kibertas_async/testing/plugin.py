"""The pytest plugin behind :mod:`kibertas_async.testing` (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

import atexit
from collections.abc import Iterator

import pytest

from kibertas_async.sandbox.build import binaries_for
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION
from kibertas_async.testing import TEST_CLUSTER_NAMES, ci_requires_sandbox, start_test_sandbox

_SANDBOX_FIXTURES = frozenset({"sandbox", "sandbox_cluster"})


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``sandbox`` marker, so suites with ``--strict-markers`` need not."""
    config.addinivalue_line(
        "markers", "sandbox: needs the local Kubernetes sandbox (added to every test using its fixtures)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a sandbox fixture, so ``-m "not sandbox"`` deselects them."""
    for item in items:
        if _SANDBOX_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sandbox)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Two running sandbox clusters, ``sandbox-1`` and ``sandbox-2``, for the whole test session."""
    missing = binaries_for(DEFAULT_KUBERNETES_VERSION).missing()
    if missing:
        message = (
            f"sandbox binaries missing ({', '.join(path.name for path in missing)}); "
            "build them with `kibertas-async sandbox build` (tens of minutes the first time) "
            "or point $KIBERTAS_ASYNC_SANDBOX_BIN_DIR at a directory holding them"
        )
        if ci_requires_sandbox():
            pytest.fail(f"CI is set: {message}", pytrace=False)
        pytest.skip(message)
    started = start_test_sandbox(tmp_path_factory.mktemp("kibertas-async-sandbox"), TEST_CLUSTER_NAMES)
    # The finalizer below covers normal ends; atexit covers an interpreter exit that skips it. A killed
    # test process is covered by the kernel: every sandbox process has PR_SET_PDEATHSIG.
    atexit.register(started.down)
    try:
        yield started
    finally:
        started.down()
        atexit.unregister(started.down)


@pytest.fixture
def sandbox_cluster(sandbox: Sandbox) -> SandboxCluster:
    """The first sandbox cluster, ``sandbox-1``."""
    return sandbox.cluster(TEST_CLUSTER_NAMES[0])
