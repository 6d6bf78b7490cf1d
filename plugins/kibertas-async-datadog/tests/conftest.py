"""Fixtures for the datadog-agent check's tests: the real CLI, in-process, against the two-cluster sandbox."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kibertas_async.cli import main
from kibertas_async.sandbox.addons.discovery import RUN_CONFIG_NAME
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import TEST_CLUSTER_NAMES, kubectl
from kibertas_async_datadog.standin import StandinControl

MANAGED_BY_SELECTOR = "app.kubernetes.io/managed-by=kibertas-async"


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp and aiosonic run on asyncio only."""
    return "asyncio"


@dataclass
class CheckRun:
    """What one in-process ``kibertas-async run`` produced."""

    code: int
    out: str
    err: str
    report: dict[str, Any]

    def result(self, cluster: str) -> dict[str, Any]:
        """The report's result for ``cluster``."""
        return next(item for item in self.report["results"] if item["cluster"] == cluster)


RunCheck = Callable[..., CheckRun]


@pytest.fixture
def run_check(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> RunCheck:
    """``run_check("datadog-agent", "--flag", "value")`` on both sandbox clusters, with the sandbox's config."""
    for name in ("KIBERTAS_ASYNC_CONFIG", "KIBERTAS_ASYNC_CLUSTERS", "DD_API_KEY", "DD_APP_KEY", "DD_SITE"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> CheckRun:
        report_path = tmp_path / "report.json"
        report_path.unlink(missing_ok=True)
        code = main(
            [
                "run",
                *args,
                "--kubeconfig",
                str(sandbox.kubeconfig),
                "--clusters",
                ",".join(TEST_CLUSTER_NAMES),
                "--config",
                str(sandbox.state_dir / RUN_CONFIG_NAME),
                "--report-json",
                str(report_path),
                "--log-format",
                "json",
            ]
        )
        captured = capsys.readouterr()
        return CheckRun(code, captured.out, captured.err, json.loads(report_path.read_text(encoding="utf-8")))

    return run


@pytest.fixture
def standin_stats(sandbox: Sandbox) -> Callable[[str], dict[str, int]]:
    """``standin_stats("sandbox-1")``: the request counters of that cluster's Datadog stand-in."""
    document = yaml.safe_load((sandbox.state_dir / RUN_CONFIG_NAME).read_text(encoding="utf-8"))

    def stats(cluster: str) -> dict[str, int]:
        url = f"{document['clusters'][cluster]['datadog-api-url']}/_standin/stats"
        with urllib.request.urlopen(url, timeout=5) as response:
            counters: dict[str, int] = json.load(response)
        return counters

    return stats


@pytest.fixture
def standin_control(sandbox: Sandbox) -> Iterator[StandinControl]:
    """Scripted faults and request times of the stand-ins; faults left queued are dropped afterwards."""
    document = yaml.safe_load((sandbox.state_dir / RUN_CONFIG_NAME).read_text(encoding="utf-8"))
    control = StandinControl(
        {cluster: document["clusters"][cluster]["datadog-api-url"] for cluster in TEST_CLUSTER_NAMES}
    )
    try:
        yield control
    finally:
        for cluster in TEST_CLUSTER_NAMES:
            control.clear_faults(cluster)


@pytest.fixture
def assert_nothing_left(sandbox: Sandbox) -> Callable[[], None]:
    """``assert_nothing_left()``: nothing labelled as ours remains in either cluster."""

    def check() -> None:
        for cluster in TEST_CLUSTER_NAMES:
            left = kubectl(
                sandbox,
                cluster,
                "get",
                "namespaces,deployments,daemonsets,pods",
                "-A",
                "-l",
                MANAGED_BY_SELECTOR,
                "-o",
                "name",
            ).stdout
            assert left.strip() == "", f"{cluster}: left behind: {left}"

    return check
