"""The results notifier against the Datadog stand-in's intake endpoints (events v1, series v2)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import yaml

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing.runner import CheckRunner
from kibertas_async_datadog.sandbox import api_key_for, app_key_for

CHECK = "datadog-agent"


@pytest.fixture
def intake(sandbox: Sandbox) -> tuple[str, Any]:
    """sandbox-1's stand-in URL, and a function reading what its intake endpoints accepted since now."""
    document = yaml.safe_load(sandbox.run_config.read_text(encoding="utf-8"))
    url = str(document["clusters"]["sandbox-1"]["datadog-api-url"])

    def accepted() -> dict[str, list[dict[str, Any]]]:
        with urllib.request.urlopen(f"{url}/_standin/intake", timeout=5) as response:
            found: dict[str, list[dict[str, Any]]] = json.load(response)
        return found

    before = accepted()

    def since() -> dict[str, list[dict[str, Any]]]:
        now = accepted()
        return {kind: now[kind][len(before[kind]) :] for kind in ("events", "series")}

    return url, since


def test_each_run_reaches_datadog_as_events_and_metrics(check_runner: CheckRunner, intake: tuple[str, Any]) -> None:
    url, since = intake
    key = api_key_for("sandbox-1")
    run = check_runner.run(CHECK, "--datadog-results", "--datadog-results-url", url, "--datadog-results-api-key", key)

    assert run.code == 0, run.err
    posted_events = run.events_named("notifier.posted")
    assert len(posted_events) == 1, run.err[-3000:]
    [posted] = posted_events
    assert posted["notifier"] == "datadog-results" and posted["events"] == 2 and posted["series"] == 4
    received = since()
    titles = sorted(event["title"] for event in received["events"])
    assert titles == ["kibertas-async OK — sandbox-1", "kibertas-async OK — sandbox-2"]
    assert {event["alert_type"] for event in received["events"]} == {"success"}
    assert all(f"run_id:{run.run_id}" in event["tags"] for event in received["events"])
    assert "OK datadog-agent (passed," in received["events"][0]["text"]

    metrics = {(s["metric"], next(t for t in s["tags"] if t.startswith("cluster:"))): s for s in received["series"]}
    assert set(metrics) == {
        (name, f"cluster:{cluster}")
        for name in ("kibertas_async.check.duration", "kibertas_async.check.ok")
        for cluster in ("sandbox-1", "sandbox-2")
    }
    ok = metrics[("kibertas_async.check.ok", "cluster:sandbox-1")]
    assert ok["points"][0]["value"] == 1.0 and ok["type"] == 3  # a gauge
    assert {"check:datadog-agent", "outcome:passed"} <= set(ok["tags"])
    duration = metrics[("kibertas_async.check.duration", "cluster:sandbox-2")]
    assert duration["unit"] == "second" and duration["points"][0]["value"] > 0
    everything = json.dumps(received)
    for secret in (key, app_key_for("sandbox-1"), app_key_for("sandbox-2"), api_key_for("sandbox-2")):
        assert secret not in everything


def test_an_ng_check_is_an_error_event_and_ok_zero(check_runner: CheckRunner, intake: tuple[str, Any]) -> None:
    url, since = intake
    run = check_runner.run(
        CHECK, "--datadog-api-key", "wrong-api-key", "--datadog-results", "--datadog-results-url", url,
        "--datadog-results-api-key", api_key_for("sandbox-1"),
    )  # fmt: skip

    assert run.code == 1
    received = since()
    assert {event["alert_type"] for event in received["events"]} == {"error"}
    [event] = [e for e in received["events"] if e["title"] == "kibertas-async NG — sandbox-1"]
    assert "NG datadog-agent (failed," in event["text"]
    assert "Datadog rejected the API or application key (HTTP 403: Forbidden)" in event["text"]
    oks = [s for s in received["series"] if s["metric"] == "kibertas_async.check.ok"]
    assert [s["points"][0]["value"] for s in oks] == [0.0, 0.0]
    assert all("outcome:failed" in s["tags"] for s in oks)
    assert "wrong-api-key" not in json.dumps(received)


def test_a_rejected_results_key_is_logged_and_never_changes_the_exit_code(
    check_runner: CheckRunner, intake: tuple[str, Any]
) -> None:
    url, since = intake
    secret = "not-the-results-key-5a4b"
    run = check_runner.run(
        CHECK, "--datadog-results", "--datadog-results-url", url, "--datadog-results-api-key", secret
    )

    assert run.code == 0, run.err
    [failed] = run.events_named("notifier.failed")
    assert failed["notifier"] == "datadog-results"
    assert failed["reason"].startswith("HTTP 403"), failed
    assert since() == {"events": [], "series": []}
    assert secret not in run.err + run.out


def test_results_without_a_key_is_bad_input(check_runner: CheckRunner) -> None:
    run = check_runner.run(CHECK, "--datadog-results")
    assert run.code == 2
    assert run.report is None
    [line] = [line for line in run.err.splitlines() if line.strip()]
    assert "datadog-results-api-key" in line, run.err
