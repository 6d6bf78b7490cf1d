"""Chatwork down or rate limiting, end to end: a real ``kibertas-async run`` process (synthetic checks, no
cluster) posting to the Chatwork stand-in. A notifier failure never changes the exit code, is logged
once and without a traceback; a 429 with ``Retry-After`` is waited out and the message delivered once."""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from kibertas_async_chatwork.standin import ChatworkStandin

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[3]
SYNTHETIC_PLUGIN_DIR = ROOT / "tests" / "fixtures" / "plugins" / "kibertas-async-synthetic"
ROOM = "424242"
BUDGET = 4
"""The notifier's default ``chatwork-max-attempts``."""


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """One context; synthetic checks never contact its server."""
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(
        """
apiVersion: v1
kind: Config
current-context: alpha
clusters:
- name: alpha
  cluster: {server: "https://127.0.0.1:1"}
contexts:
- name: alpha
  context: {cluster: alpha, user: nobody}
users:
- name: nobody
  user: {token: not-a-real-token}
""",
        encoding="utf-8",
    )
    return path


class Run:
    """What one ``kibertas-async run`` process did: exit code and its JSON events."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        self.events: list[dict[str, Any]] = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]

    def named(self, name: str) -> list[dict[str, Any]]:
        """The events called ``name``."""
        return [event for event in self.events if event.get("event") == name]


async def run_cli(check: str, kubeconfig: Path, chatwork: ChatworkStandin | None) -> Run:
    """``kibertas-async run CHECK`` in its own process, posting to ``chatwork`` (none: Chatwork unset)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KIBERTAS_ASYNC_", "CHATWORK_")) and key != "KUBECONFIG"
    }
    env.update(PYTHONPATH=str(SYNTHETIC_PLUGIN_DIR), KUBECONFIG=str(kubeconfig))
    if chatwork is not None:
        env.update(CHATWORK_API_TOKEN=chatwork.token, CHATWORK_ROOM_ID=ROOM, CHATWORK_API_URL=chatwork.api_url)
    argv = [sys.executable, "-m", "kibertas_async", "run", check, "--plugin", "kibertas_async_synthetic"]
    result = await anyio.run_process([*argv, "--log-format", "json", "--no-summary"], env=env, check=False)
    return Run(result.returncode, result.stdout.decode(), result.stderr.decode())


def _gaps(chatwork: ChatworkStandin) -> list[float]:
    return [later.received_at - earlier.received_at for earlier, later in itertools.pairwise(chatwork.requests)]


def _every_request_fails(chatwork: ChatworkStandin) -> None:
    chatwork.fail_next(100, status=500)


def _rate_limited_beyond_the_budget(chatwork: ChatworkStandin) -> None:
    chatwork.rate_limit_next(100, retry_after="0")


@pytest.mark.parametrize(("check", "expected_code"), [("sleeper-1", 0), ("failing", 1)])
@pytest.mark.parametrize(
    ("outage", "last_answer"),
    [
        (_every_request_fails, "Chatwork server error (HTTP 500)"),
        (_rate_limited_beyond_the_budget, "rate limited by Chatwork (HTTP 429: Rate limit exceeded)"),
    ],
    ids=["500-always", "429-beyond-budget"],
)
async def test_chatwork_down_leaves_the_exit_code_alone(
    kubeconfig: Path,
    check: str,
    expected_code: int,
    outage: Callable[[ChatworkStandin], None],
    last_answer: str,
) -> None:
    without_chatwork = await run_cli(check, kubeconfig, None)
    assert without_chatwork.code == expected_code, without_chatwork.stderr
    async with ChatworkStandin() as chatwork:
        outage(chatwork)
        run = await run_cli(check, kubeconfig, chatwork)

    assert run.code == without_chatwork.code == expected_code, run.stderr
    assert chatwork.messages == []
    assert len(chatwork.requests) == BUDGET, "retried up to the budget, then given up"
    [failed] = run.named("notifier.failed")
    assert failed["notifier"] == "chatwork"
    assert failed["reason"] == f"gave up after {BUDGET} attempts: {last_answer}"
    assert len(run.named("notifier.retrying")) == BUDGET - 1
    assert "Traceback" not in run.stderr
    [finished] = run.named("run.finished")
    assert finished["outcome"] == ("passed" if expected_code == 0 else "failed")
    assert chatwork.token not in run.stdout + run.stderr


async def test_rate_limited_twice_then_delivered_once_after_the_asked_waits(kubeconfig: Path) -> None:
    async with ChatworkStandin() as chatwork:
        chatwork.rate_limit_next(2, retry_after="1")
        run = await run_cli("sleeper-1", kubeconfig, chatwork)

    assert run.code == 0, run.stderr
    assert [request.status for request in chatwork.requests] == [429, 429, 200]
    assert all(gap >= 1.0 for gap in _gaps(chatwork)), _gaps(chatwork)
    [message] = chatwork.messages
    assert message.room_id == ROOM and "sleeper-1" in message.body
    [posted] = run.named("notifier.posted")
    assert posted["attempts"] == 3
    assert [event["delay"] for event in run.named("notifier.retrying")] == [1.0, 1.0]
    assert run.named("notifier.failed") == []
    assert "Traceback" not in run.stderr
