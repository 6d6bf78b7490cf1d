"""The pytest plugin behind :mod:`kibertas_async.testing` (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

import atexit
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kibertas_async.sandbox.addons import SandboxAddon
from kibertas_async.sandbox.build import binaries_for
from kibertas_async.sandbox.runner import STATE_DIR_MARKER, Sandbox, SandboxCluster, SandboxConfig
from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION
from kibertas_async.testing import TEST_CLUSTER_NAMES, ci_requires_sandbox, start_test_sandbox
from kibertas_async.testing.runner import CheckRunner, RunResult, leftovers, sweep_leftovers

if TYPE_CHECKING:
    from kibertas_async.kube import KubeClient
    from kibertas_async.testing.faultproxy import FaultProxy

_SANDBOX_FIXTURES = frozenset(
    {
        "sandbox",
        "sandbox_cluster",
        "check_runner",
        "nothing_left",
        "sandbox_factory",
        "sandbox_client",
        "sandbox_namespace",
        "fault_proxy",
        "proxied_client",
    }
)

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


def _require_sandbox_binaries() -> None:
    """Skip (or, when ``$CI`` is true, fail) the requesting test when the sandbox binaries are missing."""
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


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Two running sandbox clusters, ``sandbox-1`` and ``sandbox-2``, for the whole test session."""
    _require_sandbox_binaries()
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
    cluster (every kind the API servers serve is listed); ``nothing_left()``: no object of any run.

    What it finds fails the test and is then swept away (``kibertas-async cleanup``), so the session's
    later tests start clean: one test that leaves objects behind fails once, not every test after it."""

    def check(run: RunResult | None = None) -> None:
        run_id = None if run is None else run.run_id
        found = leftovers(sandbox, run_id)
        if not found:
            return
        still_there = sweep_leftovers(sandbox, run_id)
        swept = f"; the sweep could not remove {still_there}" if still_there else "; swept away since"
        raise AssertionError(f"left behind by {'run ' + run_id if run_id else 'kibertas-async'}: {found}{swept}")

    return check


class SandboxFactory:
    """The ``sandbox_factory`` fixture: starts sandboxes of the caller's choosing, and stops them all when
    the session ends (like ``tmp_path_factory``, each call makes a new one).

    ``sandbox_factory(addons=["kwok"])`` is the control plane and kwok's nodes without the plugins'
    add-ons: seconds to start instead of tens (docs/sandbox.md has the figures). A plugin suite that needs
    no more overrides the ``sandbox`` fixture in its ``conftest.py``, and ``sandbox_cluster``,
    ``check_runner`` and ``nothing_left`` use that one::

        @pytest.fixture(scope="session")
        def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
            return sandbox_factory(addons=["kwok"])
    """

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._started: list[Sandbox] = []

    def __call__(
        self,
        *,
        clusters: Sequence[str] = TEST_CLUSTER_NAMES,
        addons: Sequence[str | SandboxAddon] | None = None,
        extra_args: Mapping[str, Sequence[str]] | None = None,
    ) -> Sandbox:
        """Start a sandbox in a fresh temporary state directory, processes bound to this test process.

        :param clusters: cluster (and context) names; the kit's fixtures expect ``sandbox-1`` among them.
        :param addons: add-on names (``kwok``, or ones the installed plugins register) or add-on objects
            (``KwokAddon(nodes=...)``), started in the order given; ``[]``: the control plane alone, no
            nodes; None: kwok and every registered add-on, as the ``sandbox`` fixture has.
        :param extra_args: flags added to the core processes (``SandboxConfig.extra_args``), e.g.
            ``{"kube-apiserver": ["--enable-admission-plugins=AlwaysPullImages"]}``.
        :raises UsageError: an unknown add-on or component name, or an argument that is not a flag.
        :raises SandboxError: a process refused its arguments or was not ready in time (its log quoted).
        """
        from kibertas_async.sandbox.addons.discovery import select_addons

        _require_sandbox_binaries()
        state_dir = self._tmp_path_factory.mktemp("kibertas-async-sandbox")
        config = SandboxConfig(
            cluster_names=tuple(clusters),
            state_dir=state_dir,
            kubeconfig=state_dir / "kubeconfig",
            extra_args=dict(extra_args or {}),
        )
        if addons is not None:
            named = select_addons([addon for addon in addons if isinstance(addon, str)])
            by_name = {addon.name: addon for addon in named}
            chosen = tuple(by_name[addon] if isinstance(addon, str) else addon for addon in addons)
            config = dataclasses.replace(config, addons=chosen)
        started = Sandbox.start(config, die_with_parent=True)
        self._started.append(started)
        return started

    def close(self) -> None:
        """Bring down every sandbox this factory started that is not down already."""
        for started in self._started:
            if (started.state_dir / STATE_DIR_MARKER).exists():
                started.down()
        self._started.clear()


@pytest.fixture(scope="session")
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxFactory]:
    """``sandbox_factory(clusters=..., addons=["kwok"], extra_args=...)`` starts a sandbox of your choosing;
    every one is stopped when the session ends (see :class:`SandboxFactory`)."""
    factory = SandboxFactory(tmp_path_factory)
    atexit.register(factory.close)
    try:
        yield factory
    finally:
        factory.close()
        atexit.unregister(factory.close)


# --- a test's own hands on the sandbox's API server ----------------------------------------------
# Async fixtures: the tests using them are anyio tests (``pytest.mark.anyio``, or an ``anyio_backend``
# fixture in their conftest).


@pytest.fixture
async def sandbox_client(sandbox_cluster: SandboxCluster) -> AsyncIterator[KubeClient]:
    """A :class:`~kibertas_async.kube.KubeClient` straight to ``sandbox_cluster``'s API server: the test's own
    hands (setting up, looking), never the code under test. Closed after the test."""
    from kibertas_async.kube import ClusterTarget, connect

    target = ClusterTarget(
        sandbox_cluster.name, context=sandbox_cluster.context, kubeconfig=str(sandbox_cluster.kubeconfig)
    )
    async with await connect(target) as kube:
        yield kube


@pytest.fixture
async def sandbox_namespace(sandbox_client: KubeClient) -> AsyncIterator[str]:
    """The name of a namespace of the test's own on ``sandbox_cluster`` (``kit-test-…``), deleted afterwards."""
    from kibertas_async.kube.resources import NAMESPACES

    created = await sandbox_client.create(NAMESPACES, {"metadata": {"generateName": "kit-test-"}})
    name = str(created["metadata"]["name"])
    yield name
    await sandbox_client.delete(NAMESPACES, name)


@pytest.fixture
async def fault_proxy(sandbox_cluster: SandboxCluster) -> AsyncIterator[FaultProxy]:
    """A :class:`~kibertas_async.testing.faultproxy.FaultProxy` in front of ``sandbox_cluster``'s API server
    (refuse, delay or end chosen requests); see ``proxied_client`` for a client through it."""
    from kibertas_async.testing.faultproxy import FaultProxy

    async with FaultProxy.for_cluster(sandbox_cluster) as started:
        yield started


@pytest.fixture
async def proxied_client(fault_proxy: FaultProxy, tmp_path: Path) -> AsyncIterator[KubeClient]:
    """A :class:`~kibertas_async.kube.KubeClient` that reaches the API server through ``fault_proxy``: give it
    to the code under test, and the faults the test sets are what that code meets."""
    from kibertas_async.kube import connect

    async with await connect(fault_proxy.write_kubeconfig(tmp_path / "proxy-kubeconfig.json")) as kube:
        yield kube
