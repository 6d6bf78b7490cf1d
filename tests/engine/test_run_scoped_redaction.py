"""Secrets are run-scoped: each run redacts with its own redactor, which covers the event stream while
the run lives; with no run alive, the environment's secret variables are still blanked (issue 10)."""

from __future__ import annotations

import gc
import io
import json

import pytest

from kibertas_async.events import EVENT_REDACTION, REDACTED, SecretRedactor, configure_logging, get_logger
from tests.conftest import RunCli


def logged(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_redactor_covers_the_stream_while_it_lives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_API_KEY", "environment-key-123456")
    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream)
    run = SecretRedactor(["run-secret-abcdef"])
    EVENT_REDACTION.cover(run)
    get_logger().info("during", text="run-secret-abcdef and environment-key-123456")
    del run
    gc.collect()
    get_logger().info("after", text="environment-key-123456")
    during, after = logged(stream)
    assert during["text"] == f"{REDACTED} and {REDACTED}"  # the run's redactor holds the environment's too
    assert after["text"] == REDACTED  # no run alive: the environment's secrets, read at configuration
    assert EVENT_REDACTION.text("environment-key-123456") == REDACTED


def test_two_runs_in_one_process_each_redact_their_own_secret(run_cli: RunCli) -> None:
    first = run_cli("run", "sleeper-1", "--clusters", "alpha", "--synthetic-secret", "first-run-secret-1")
    gc.collect()
    second = run_cli("run", "sleeper-1", "--clusters", "alpha", "--synthetic-secret", "second-run-secret-2")
    assert first.code == second.code == 0
    for result, secret in ((first, "first-run-secret-1"), (second, "second-run-secret-2")):
        assert secret not in result.err
        [sleeping] = [event for event in result.events() if event["event"] == "synthetic.sleeping"]
        assert sleeping["secret_seen"] == REDACTED
