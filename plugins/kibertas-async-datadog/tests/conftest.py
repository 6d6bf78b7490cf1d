"""Fixtures for the datadog-agent check's tests: the sandbox's Datadog stand-ins, counted and scripted; the
runs come from kibertas-async's pytest plugin (``check_runner``, ``nothing_left``)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import yaml

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import TEST_CLUSTER_NAMES
from kibertas_async_datadog.standin import StandinControl


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp and aiosonic run on asyncio only."""
    return "asyncio"


@pytest.fixture
def standin_stats(sandbox: Sandbox) -> Callable[[str], dict[str, int]]:
    """``standin_stats("sandbox-1")``: the request counters of that cluster's Datadog stand-in."""
    document = yaml.safe_load(sandbox.run_config.read_text(encoding="utf-8"))

    def stats(cluster: str) -> dict[str, int]:
        url = f"{document['clusters'][cluster]['datadog-api-url']}/_standin/stats"
        with urllib.request.urlopen(url, timeout=5) as response:
            counters: dict[str, int] = json.load(response)
        return counters

    return stats


@pytest.fixture
def standin_control(sandbox: Sandbox) -> Iterator[StandinControl]:
    """Scripted faults and request times of the stand-ins; faults left queued are dropped afterwards."""
    document = yaml.safe_load(sandbox.run_config.read_text(encoding="utf-8"))
    control = StandinControl(
        {cluster: document["clusters"][cluster]["datadog-api-url"] for cluster in TEST_CLUSTER_NAMES}
    )
    try:
        yield control
    finally:
        for cluster in TEST_CLUSTER_NAMES:
            control.clear_faults(cluster)
