"""The pytest plugin behind :mod:`kibertas_async.testing` (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

import atexit
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kibertas_async.sandbox.build import binaries_for
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION
from kibertas_async.testing import TEST_CLUSTER_NAMES, ci_requires_sandbox, start_test_sandbox
from kibertas_async.testing.runner import CheckRunner, RunResult, leftovers

_SANDBOX_FIXTURES = frozenset({"sandbox", "sandbox_cluster", "check_runner", "nothing_left"})

NothingLeft = Callable[..., None]
"""The ``nothing_left`` fixture's type: ``nothing_left()`` or ``nothing_left(run)``."""


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


@pytest.fixture
def check_runner(sandbox: Sandbox, tmp_path: Path) -> CheckRunner:
    """A :class:`~kibertas_async.testing.runner.CheckRunner` on both sandbox clusters, with the sandbox's
    settings as ``--config``: ``check_runner.run("my-check", "--my-option", "x")``."""
    return CheckRunner(sandbox, tmp_path / "kibertas-async-runs")


@pytest.fixture
def nothing_left(sandbox: Sandbox) -> NothingLeft:
    """``nothing_left(run)`` asserts that no object carrying ``run``'s labels is left on any sandbox
    cluster (every kind the API servers serve is listed); ``nothing_left()``: no object of any run."""

    def check(run: RunResult | None = None) -> None:
        run_id = None if run is None else run.run_id
        found = leftovers(sandbox, run_id)
        assert not found, f"left behind by {'run ' + run_id if run_id else 'kibertas-async'}: {found}"

    return check
