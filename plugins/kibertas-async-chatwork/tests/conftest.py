"""Fixtures for the Chatwork plugin's tests: the anyio backend, the stand-in server, sample reports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from kibertas_async.results import CheckResult, CleanupResult, Outcome, RunReport
from kibertas_async_chatwork.standin import ChatworkStandin

STARTED_AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ROOM_ID = "123456789"
TOKEN = "cw-token-5f3a9d1e7b"


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


@pytest.fixture
async def chatwork() -> AsyncIterator[ChatworkStandin]:
    """A running Chatwork stand-in that accepts :data:`TOKEN`."""
    async with ChatworkStandin(token=TOKEN) as standin:
        yield standin


@pytest.fixture
def mixed_report() -> RunReport:
    """Two clusters, two checks each: OK, NG with a step and reason, TIMEOUT, ERROR."""
    return RunReport(
        run_id="20261126-ab12c",
        started_at=STARTED_AT,
        clusters=["prod-a", "prod-b"],
        checks=["ingress", "cert-manager"],
        duration=912.3,
        results=[
            CheckResult(
                "ingress",
                "prod-a",
                Outcome.PASSED,
                STARTED_AT,
                duration=12.34,
                facts={"address": "k8s-sample.elb.amazonaws.com"},
            ),
            CheckResult(
                "cert-manager",
                "prod-a",
                Outcome.FAILED,
                STARTED_AT,
                duration=45.0,
                step="wait for leaf certificate",
                reason="Certificate sample is not Ready:\n  Issuing certificate as Secret does not exist",
                cleanup=[
                    CleanupResult("Certificate sample", "done"),
                    CleanupResult("namespace cert-manager-test-20261126-x1y2z", "timed out"),
                ],
            ),
            CheckResult(
                "ingress",
                "prod-b",
                Outcome.TIMEOUT,
                STARTED_AT,
                duration=900.0,
                step="wait for load balancer",
                reason="check did not finish within 900s (last seen: no address yet)",
            ),
            CheckResult(
                "cert-manager",
                "prod-b",
                Outcome.ERROR,
                STARTED_AT,
                duration=0.2,
                step="connect to cluster",
                reason="ClusterUnreachable: connection refused",
            ),
        ],
    )


@pytest.fixture
def passing_report() -> RunReport:
    """One cluster, one check, passed."""
    return RunReport(
        run_id="20261126-ok001",
        started_at=STARTED_AT,
        clusters=["prod-a"],
        checks=["ingress"],
        duration=12.5,
        results=[CheckResult("ingress", "prod-a", Outcome.PASSED, STARTED_AT, duration=12.5)],
    )
