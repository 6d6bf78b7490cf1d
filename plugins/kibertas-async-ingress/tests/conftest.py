"""Fixtures for the ingress check's tests: the kit's ``check_runner`` on the shared two-cluster sandbox, for
the ``ingress`` check, with a leftover check after every test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest

from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner, ClusterSettings, RunResult

CHECK = "ingress"

RunIngress = Callable[..., RunResult]
"""The ``run_ingress`` fixture: ``run_ingress("--ingress-class", "x", clusters=[...], settings={...})``."""


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


@pytest.fixture
def passing_steps() -> list[str]:
    """The ingress check's steps, in order, when it passes (``--ingress-skip-dns`` leaves out ``resolve host``)."""
    return [
        "check options",
        "create namespace",
        "deploy web server",
        "create service",
        "create ingress",
        "wait for load balancer",
        "resolve host",
        "http request",
    ]


@pytest.fixture
def run_ingress(check_runner: CheckRunner, nothing_left: NothingLeft) -> Iterator[RunIngress]:
    """:meth:`CheckRunner.run` of the ``ingress`` check; after the test, nothing of any run may be left."""

    def run(*flags: str, clusters: Sequence[str] | None = None, settings: ClusterSettings | None = None) -> RunResult:
        return check_runner.run(CHECK, *flags, clusters=clusters, settings=settings)

    yield run
    nothing_left()
