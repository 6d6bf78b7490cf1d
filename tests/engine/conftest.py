"""Fixtures for tests that drive a real ``kibertas-async`` process with really installed plugins."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, pip_install_copy

PLUGIN_SOURCES = ("kibertas-async-synthetic", "kibertas-async-broken")


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where the test plugins are pip-installed (dist-info and entry points included)."""
    site = tmp_path_factory.mktemp("plugin-site")
    for name in PLUGIN_SOURCES:
        pip_install_copy(FIXTURES / "plugins" / name, site, tmp_path_factory.mktemp("src"))
    return site


ProcessEnv = Callable[..., dict[str, str]]


@pytest.fixture
def process_env(plugin_site: Path, kubeconfig: Path) -> ProcessEnv:
    """Environment for a child ``kibertas-async`` that sees the installed test plugins."""

    def make(**extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("KIBERTAS_ASYNC_") and key not in ("KUBECONFIG", "PYTHONPATH")
        }
        env["PYTHONPATH"] = str(plugin_site)
        env["KUBECONFIG"] = str(kubeconfig)
        env.update(extra)
        return env

    return make


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kibertas_async ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "kibertas_async", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
