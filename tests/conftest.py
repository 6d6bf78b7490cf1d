"""Shared fixtures: a kubeconfig with two contexts, and the CLI run in-process with synthetic checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kibertas_async.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
SYNTHETIC_PLUGIN_DIR = FIXTURES / "plugins" / "kibertas-async-synthetic"


def pip_install_copy(source: Path, site: Path, scratch: Path) -> None:
    """pip-install a copy of the plugin distribution ``source`` into ``site`` (dist-info and entry points
    included), building in ``scratch`` so the checkout gets no build/ or egg-info/ directories."""
    copy = scratch / source.name
    shutil.copytree(source, copy)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(copy),
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """Two contexts whose servers are never contacted by synthetic checks."""
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(
        """
apiVersion: v1
kind: Config
current-context: alpha
clusters:
- name: alpha
  cluster: {server: "https://127.0.0.1:1"}
- name: beta
  cluster: {server: "https://127.0.0.1:2"}
contexts:
- name: alpha
  context: {cluster: alpha, user: nobody}
- name: beta
  context: {cluster: beta, user: nobody}
users:
- name: nobody
  user: {token: not-a-real-token}
""",
        encoding="utf-8",
    )
    return path


@dataclass
class CliResult:
    """What one in-process run of the command line produced."""

    code: int
    out: str
    err: str
    journal: list[dict[str, Any]]

    def events(self) -> list[dict[str, Any]]:
        """The JSON event lines written to stderr."""
        return [json.loads(line) for line in self.err.splitlines() if line.startswith("{")]


RunCli = Callable[..., CliResult]


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.jsonl"


def read_journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], kubeconfig: Path, journal_path: Path
) -> RunCli:
    """``run_cli("run", "failing", ...)``: the real CLI, in this process, with only the synthetic plugin."""
    monkeypatch.syspath_prepend(str(SYNTHETIC_PLUGIN_DIR))
    monkeypatch.setenv("KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    for name in ("KIBERTAS_ASYNC_CONFIG", "KIBERTAS_ASYNC_CLUSTERS", "LOG_LEVEL", "KIBERTAS_ASYNC_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str, plugin: bool = True, journal: bool = True) -> CliResult:
        argv = list(args)
        if plugin and argv and argv[0] in ("run", "list"):
            argv += ["--plugin", "kibertas_async_synthetic"]
        if journal and argv and argv[0] == "run":
            argv += ["--synthetic-journal", str(journal_path), "--log-format", "json"]
        code = main(argv)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err, read_journal(journal_path))

    return run
