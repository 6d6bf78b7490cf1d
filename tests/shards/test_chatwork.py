"""One Chatwork message per sharded run: the shards (separate processes, Chatwork configured) post
nothing, the merge posts exactly one, and it shows the missing shard's checks. Against the Chatwork
stand-in of :mod:`kibertas_async_chatwork.standin`."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from kibertas_async_chatwork.standin import ChatworkStandin
from tests.conftest import SYNTHETIC_PLUGIN_DIR

pytestmark = pytest.mark.anyio

TOKEN = "cw-shard-token-81d2c4"
ROOM = "424242"


@pytest.fixture
async def chatwork() -> AsyncIterator[ChatworkStandin]:
    async with ChatworkStandin(token=TOKEN) as standin:
        yield standin


async def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "kibertas_async", *args, "--log-format", "json"]
    return await anyio.run_process(command, env=env, check=False)


async def test_the_shards_post_nothing_and_the_merge_posts_one_message(
    chatwork: ChatworkStandin, kubeconfig: Path, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("KIBERTAS_ASYNC_", "CHATWORK_"))}
    env.update(
        PYTHONPATH=str(SYNTHETIC_PLUGIN_DIR),
        KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD="1",
        KUBECONFIG=str(kubeconfig),
        CHATWORK_API_TOKEN=TOKEN,
        CHATWORK_ROOM_ID=ROOM,
        CHATWORK_API_URL=chatwork.api_url,
    )
    plugins = ("--plugin", "kibertas_async_synthetic", "--plugin", "kibertas_async_chatwork.plugin")
    reports = tmp_path / "reports"
    reports.mkdir()
    async with anyio.create_task_group() as shards:
        for index in (1, 2, 3):
            args = ("run", "sleeper-1", "sleeper-2", "failing", "--clusters", "alpha,beta", "--shard", f"{index}/3")
            shard = (*args, *plugins, "--run-id", "chatty", "--report-dir", str(reports))
            shards.start_soon(functools.partial(cli, *shard, env=env))
    assert len(list(reports.iterdir())) == 3
    assert chatwork.requests == [], "a shard posted"

    (reports / "chatty.shard-2-of-3.json").unlink()
    merge = await cli("report", "merge", str(reports), *plugins, env=env)
    assert merge.returncode == 1
    assert len(chatwork.requests) == 1 and len(chatwork.messages) == 1
    body = chatwork.messages[0].body
    assert body.startswith("[info][title]kibertas-async NG")
    assert "shard 2/3 sent no report" in body
    assert "chatty" in body
    assert TOKEN not in merge.stdout.decode() + merge.stderr.decode()
