"""Through the real engine: synthetic checks (no cluster), the plugin loaded by the plugin manager."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Mapping

import pytest
import structlog

from kibertas_async.checks import Check, CheckContext
from kibertas_async.engine.runner import Engine, RunPlan
from kibertas_async.events import configure_logging
from kibertas_async.kube import ClusterTarget
from kibertas_async.options import OptionValues
from kibertas_async.options.config_file import ConfigFile
from kibertas_async.options.resolution import resolve_options
from kibertas_async.plugins import AUTOLOAD_ENV, create_plugin_manager
from kibertas_async_chatwork.standin import ChatworkStandin

pytestmark = pytest.mark.anyio

CLUSTERS = ("alpha", "beta")


class PassingCheck(Check):
    name = "synthetic-pass"
    description = "Passes."
    needs_kubernetes = False

    async def run(self, ctx: CheckContext) -> None:
        async with ctx.step("look around"):
            ctx.fact("seen", "everything")


class FailingCheck(Check):
    name = "synthetic-fail"
    description = "Fails in its second step."
    needs_kubernetes = False

    async def run(self, ctx: CheckContext) -> None:
        async with ctx.step("prepare"):
            pass
        async with ctx.step("wait for the answer"):
            ctx.fail("the answer was 41")


@pytest.fixture
def json_log_stream() -> Iterator[io.StringIO]:
    """The event stream as the CLI configures it (JSON lines), written to a buffer; restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level, saved_config = root.handlers[:], root.level, structlog.get_config()
    stream = io.StringIO()
    configure_logging(log_format="json", level="debug", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.configure(**saved_config)


async def run_engine(environ: Mapping[str, str]) -> Engine:
    registry = create_plugin_manager(extra_plugins=["kibertas_async_chatwork.plugin"], environ={AUTOLOAD_ENV: "1"})
    flags = {"summary": "false", "notify-timeout": "20s"}

    def options_for(cluster: str | None) -> OptionValues:
        return resolve_options(registry.options, flags=flags, environ=environ, config=ConfigFile(), cluster=cluster)

    plan = RunPlan(
        run_id="20261126-e2e01",
        clusters=[ClusterTarget(name) for name in CLUSTERS],
        checks=[PassingCheck, FailingCheck],
        cluster_options={name: options_for(name) for name in CLUSTERS},
        run_options=options_for(None),
        plugin_problems=[],
    )
    engine = Engine(plan, registry.hook)
    await engine.run()
    return engine


async def test_a_run_posts_one_message_with_every_result(chatwork: ChatworkStandin) -> None:
    engine = await run_engine(
        {"CHATWORK_API_TOKEN": chatwork.token, "CHATWORK_ROOM_ID": "42", "CHATWORK_API_URL": chatwork.api_url}
    )

    assert engine.exit_code == 1
    [message] = chatwork.messages
    assert message.body.startswith("[info][title]kibertas-async NG — 2 clusters × 2 checks (run 20261126-e2e01)")  # noqa: RUF001
    for cluster in CLUSTERS:
        assert f"■ {cluster} — NG\nOK synthetic-pass (" in message.body
    assert message.body.count("— step 'wait for the answer': the answer was 41") == 2


async def test_a_failing_chatwork_does_not_change_the_exit_code(chatwork: ChatworkStandin) -> None:
    engine = await run_engine(
        {"CHATWORK_API_TOKEN": "not-the-token", "CHATWORK_ROOM_ID": "42", "CHATWORK_API_URL": chatwork.api_url}
    )

    assert engine.exit_code == 1
    assert [request.status for request in chatwork.requests] == [401]
    assert chatwork.messages == []


async def test_the_token_is_in_no_event_of_the_stream(chatwork: ChatworkStandin, json_log_stream: io.StringIO) -> None:
    chatwork.rate_limit_next(2, retry_after="0")

    await run_engine(
        {"CHATWORK_API_TOKEN": chatwork.token, "CHATWORK_ROOM_ID": "42", "CHATWORK_API_URL": chatwork.api_url}
    )

    events = [json.loads(line) for line in json_log_stream.getvalue().splitlines()]
    names = [event["event"] for event in events]
    assert names.count("notifier.retrying") == 2
    assert "notifier.posted" in names
    assert len(chatwork.messages) == 1
    assert chatwork.token not in json_log_stream.getvalue()
