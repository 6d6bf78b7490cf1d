"""Fixtures for the fluent check's tests; the sandbox runs come from kibertas-async's pytest plugin
(``check_runner``, ``nothing_left``)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """aioboto3 runs on asyncio only."""
    return "asyncio"
