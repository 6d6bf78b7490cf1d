"""The plugin: its options, when it registers a notifier, what the notifier sends and logs."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import kibertas_async_chatwork
from kibertas_async.errors import UsageError
from kibertas_async.options import OptionValues
from kibertas_async.options.config_file import ConfigFile
from kibertas_async.options.resolution import resolve_options
from kibertas_async.outputs import Notifier
from kibertas_async.plugins import AUTOLOAD_ENV, create_plugin_manager
from kibertas_async.results import RunReport
from kibertas_async_chatwork import plugin
from kibertas_async_chatwork.client import RetryPolicy
from kibertas_async_chatwork.plugin import ChatworkNotifier, ChatworkSettings
from kibertas_async_chatwork.standin import ChatworkStandin

PROJECT = Path(__file__).parents[1]
ROOM = "123456789"


def run_options(environ: Mapping[str, str], flags: Mapping[str, str] | None = None) -> OptionValues:
    return resolve_options(
        plugin.CHATWORK_OPTIONS, flags=flags or {}, environ=environ, config=ConfigFile(), cluster=None
    )


def notifiers_for(environ: Mapping[str, str]) -> list[Notifier]:
    return plugin.kibertas_async_register_notifiers(options=run_options(environ))


def configured(chatwork: ChatworkStandin, *, notify_when: plugin.NotifyWhen = "always") -> ChatworkNotifier:
    async def no_wait(_seconds: float) -> None:
        return None

    settings = ChatworkSettings(
        token=chatwork.token,
        room_id=ROOM,
        api_url=chatwork.api_url,
        notify_when=notify_when,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, request_timeout=5.0),
    )
    return ChatworkNotifier(settings, sleep=no_wait)


# --- options and registration ---------------------------------------------------------------


def test_the_reference_tool_environment_variables_configure_the_notifier() -> None:
    options = run_options(
        {"CHATWORK_API_TOKEN": "tok3n\n", "CHATWORK_ROOM_ID": ROOM, "CHATWORK_API_URL": "http://127.0.0.1:9/v2/"}
    )

    [notifier] = plugin.kibertas_async_register_notifiers(options=options)

    assert isinstance(notifier, ChatworkNotifier)
    assert isinstance(notifier, Notifier)
    assert notifier.settings.token == "tok3n"
    assert notifier.settings.room_id == ROOM
    assert notifier.settings.api_url == "http://127.0.0.1:9/v2"
    assert notifier.settings.notify_when == "always"
    assert notifier.settings.retry.max_attempts == RetryPolicy().max_attempts
    assert "tok3n" not in repr(notifier.settings)


def test_our_own_flags_and_variables_work_too() -> None:
    options = run_options(
        {"KIBERTAS_ASYNC_CHATWORK_API_TOKEN": "tok3n"},
        flags={"chatwork-room-id": "#!rid42", "chatwork-notify": "Failure", "chatwork-max-attempts": "2"},
    )

    [notifier] = plugin.kibertas_async_register_notifiers(options=options)

    assert isinstance(notifier, ChatworkNotifier)
    assert notifier.settings.room_id == "42"
    assert notifier.settings.notify_when == "failure"
    assert notifier.settings.retry.max_attempts == 2
    assert notifier.settings.api_url == "https://api.chatwork.com/v2"


def test_no_notifier_when_unconfigured() -> None:
    with capture_logs() as logs:
        assert notifiers_for({}) == []
    assert logs == []


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        ({"CHATWORK_API_TOKEN": "tok3n"}, "--chatwork-room-id"),
        ({"KIBERTAS_ASYNC_CHATWORK_API_TOKEN": "tok3n", "CHATWORK_ROOM_ID": ""}, "--chatwork-room-id"),
        ({"CHATWORK_ROOM_ID": ROOM}, "--chatwork-api-token"),
    ],
)
def test_half_a_configuration_is_a_usage_error_before_the_run(environ: dict[str, str], missing: str) -> None:
    with pytest.raises(UsageError) as raised:
        run_options(environ)
    message = str(raised.value)
    assert f"but {missing} is not" in message
    assert "tok3n" not in message


def test_the_notifier_hook_registers_nothing_for_half_a_configuration_given_directly() -> None:
    options = OptionValues({plugin.API_TOKEN: "tok3n", plugin.ROOM_ID: ""}, {})
    with capture_logs() as logs:
        assert plugin.kibertas_async_register_notifiers(options=options) == []
    assert logs == []


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("chatwork-room-id", "my-room"),
        ("chatwork-api-url", "api.chatwork.com/v2"),
        ("chatwork-notify", "sometimes"),
        ("chatwork-max-attempts", "0"),
    ],
)
def test_bad_values_are_usage_errors(flag: str, value: str) -> None:
    with pytest.raises(UsageError, match=f"--{flag}"):
        run_options({}, flags={flag: value})


def test_a_bad_token_value_is_never_echoed() -> None:
    options = run_options({"CHATWORK_API_TOKEN": "tok3n", "CHATWORK_ROOM_ID": ROOM})
    assert plugin.API_TOKEN.display(options[plugin.API_TOKEN]) == "<set>"
    assert options.describe()["chatwork-api-token"] == "<set>"
    assert options.secrets() == ["tok3n"]


def test_the_plugin_loads_through_the_real_plugin_manager() -> None:
    registry = create_plugin_manager(extra_plugins=["kibertas_async_chatwork.plugin"], environ={AUTOLOAD_ENV: "1"})

    assert registry.problems == []
    names = {option.name for option in registry.options}
    assert {option.name for option in plugin.CHATWORK_OPTIONS} <= names


def test_the_entry_point_is_declared() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert project["name"] == "kibertas-async-chatwork"
    assert project["entry-points"]["kibertas_async"] == {"chatwork": "kibertas_async_chatwork.plugin"}
    assert {"kibertas-async", "aiohttp>=3.9"} <= set(project["dependencies"])
    assert (PROJECT / "kibertas_async_chatwork" / "py.typed").is_file()


def test_the_version_has_one_source() -> None:
    from importlib.metadata import version

    assert version("kibertas-async-chatwork") == kibertas_async_chatwork.__version__


def test_importing_the_plugin_does_not_import_aiohttp() -> None:
    probe = "import sys, kibertas_async_chatwork.plugin; print('aiohttp' in sys.modules, 'anyio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_every_option_is_in_the_readme() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    for option in plugin.CHATWORK_OPTIONS:
        assert f"`{option.flag}`" in readme
        for env_name in option.env_names:
            assert f"`{env_name}`" in readme


# --- the notifier ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_one_message_per_run(chatwork: ChatworkStandin, mixed_report: RunReport) -> None:
    with capture_logs() as logs:
        await configured(chatwork).notify(mixed_report)

    [message] = chatwork.messages
    assert message.room_id == ROOM
    assert message.body.startswith("[info][title]kibertas-async NG — 2 clusters × 2 checks")  # noqa: RUF001
    [posted] = logs
    assert posted["event"] == "notifier.posted"
    assert posted["message_id"] == message.message_id


@pytest.mark.anyio
async def test_failure_mode_sends_nothing_on_an_ok_run(chatwork: ChatworkStandin, passing_report: RunReport) -> None:
    with capture_logs() as logs:
        await configured(chatwork, notify_when="failure").notify(passing_report)

    assert chatwork.requests == []
    assert [log["event"] for log in logs] == ["notifier.skipped"]


@pytest.mark.anyio
async def test_failure_mode_sends_on_a_failed_run(chatwork: ChatworkStandin, mixed_report: RunReport) -> None:
    await configured(chatwork, notify_when="failure").notify(mixed_report)

    assert len(chatwork.messages) == 1


@pytest.mark.anyio
async def test_failure_mode_sends_on_an_interrupted_run(chatwork: ChatworkStandin, passing_report: RunReport) -> None:
    await configured(chatwork, notify_when="failure").notify(
        dataclasses.replace(passing_report, interrupted_by="SIGINT")
    )

    assert len(chatwork.messages) == 1


@pytest.mark.anyio
async def test_a_rejected_token_is_logged_not_raised(chatwork: ChatworkStandin, mixed_report: RunReport) -> None:
    notifier = configured(chatwork)
    notifier.settings = dataclasses.replace(notifier.settings, token="wrong-token-0042")

    with capture_logs() as logs:
        await notifier.notify(mixed_report)

    [failed] = logs
    assert failed["event"] == "notifier.failed"
    assert failed["log_level"] == "error"
    assert failed["notifier"] == "chatwork"
    assert failed["status"] == 401
    assert failed["attempts"] == 1
    assert "rejected the API token" in failed["reason"]
    assert len(chatwork.requests) == 1


@pytest.mark.anyio
async def test_an_unreachable_chatwork_is_logged_not_raised(mixed_report: RunReport) -> None:
    async with ChatworkStandin() as closed:
        notifier = configured(closed)

    with capture_logs() as logs:
        await notifier.notify(mixed_report)

    assert [log["event"] for log in logs] == ["notifier.retrying", "notifier.retrying", "notifier.failed"]
    assert logs[-1]["status"] is None


@pytest.mark.anyio
async def test_the_token_never_appears_in_the_logs(
    chatwork: ChatworkStandin, mixed_report: RunReport, caplog: pytest.LogCaptureFixture
) -> None:
    chatwork.rate_limit_next(1, retry_after="0")
    chatwork.fail_next(1, status=502)
    wrong_token = "wrong-token-0042"
    caplog.set_level(logging.DEBUG)

    with capture_logs() as logs:
        await configured(chatwork).notify(mixed_report)
        rejected = configured(chatwork)
        rejected.settings = dataclasses.replace(rejected.settings, token=wrong_token)
        await rejected.notify(mixed_report)
        with pytest.raises(UsageError):
            notifiers_for({"CHATWORK_API_TOKEN": chatwork.token})

    events = [log["event"] for log in logs]
    assert events == [
        "notifier.retrying",
        "notifier.retrying",
        "notifier.posted",
        "notifier.failed",
    ]
    everything_logged = repr(logs) + caplog.text
    assert chatwork.token not in everything_logged
    assert wrong_token not in everything_logged
    assert "X-ChatWorkToken" not in everything_logged
