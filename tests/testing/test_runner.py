"""The test kit's runner does what the README says: the real CLI in process and as a subprocess, typed
results, a hermetic environment, and leftovers found on any kind."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from kibertas_async import Outcome
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import BackgroundRun, CheckRunner, leftovers

CHECK = "datadog-agent"
"""A quick built-in check (about a second) whose keys come from the sandbox's settings."""


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "subprocess"])
def test_a_run_returns_typed_results_and_its_events(check_runner: CheckRunner, in_process: bool) -> None:
    run = check_runner.run(CHECK, in_process=in_process)

    assert run.code == 0, run.err
    assert run.run_id
    assert {(r.cluster, r.check, r.outcome) for r in run.results} == {
        ("sandbox-1", CHECK, Outcome.PASSED),
        ("sandbox-2", CHECK, Outcome.PASSED),
    }
    result = run.result("sandbox-1")
    assert result.step is None and result.reason == ""
    assert result.api_requests > 0
    assert all(step.outcome is Outcome.PASSED for step in result.steps)
    assert [e["cluster"] for e in run.events_named("check.finished")].count("sandbox-1") == 1
    assert "OK: 2 passed" in run.out
    assert run.argv[:2] == ["run", CHECK] and "--config" in run.argv
    assert check_runner.runs == [run]


def test_the_environment_is_hermetic_unless_the_test_passes_it(
    check_runner: CheckRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DD_API_KEY", "a-developers-own-key")  # hidden from the run
    assert check_runner.run(CHECK).code == 0

    given = check_runner.run(CHECK, env={"DD_API_KEY": "wrong-key"})  # environment beats the config file
    assert given.code == 1
    assert given.result("sandbox-1").outcome is Outcome.FAILED
    reason = given.result("sandbox-1").reason
    assert reason.startswith("Datadog rejected the API or application key (HTTP 403: Forbidden)"), reason


def test_leftovers_finds_a_labelled_object_of_any_kind(sandbox: Sandbox) -> None:
    labels = {"app.kubernetes.io/managed-by": "kibertas-async", "kibertas-async/run-id": "kit-test"}
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kit-leftover", "labels": labels}}
    kubectl(sandbox, "sandbox-2", "-n", "default", "apply", "-f", "-", input=json.dumps(manifest))
    try:
        assert leftovers(sandbox, "kit-test") == ["sandbox-2: ConfigMap default/kit-leftover"]
        assert leftovers(sandbox, "another-run") == []
    finally:
        kubectl(sandbox, "sandbox-2", "-n", "default", "delete", "configmap", "kit-leftover")
    assert leftovers(sandbox, "kit-test") == []


def test_bad_input_writes_no_report_and_results_say_so(check_runner: CheckRunner) -> None:
    run = check_runner.run("no-such-check")
    assert run.code == 2
    assert run.report is None
    assert "no-such-check" in run.err
    with pytest.raises(AssertionError, match="wrote no report"):
        run.result("sandbox-1")


@pytest.mark.anyio
async def test_nothing_left_works_inside_an_async_test(nothing_left: Any) -> None:
    """The fixture is synchronous; in a test whose event loop runs, it lists from a worker thread."""
    nothing_left()  # would raise "Already running asyncio in this thread" without the worker


def test_nothing_left_fails_on_what_it_finds_and_sweeps_it_away(sandbox: Sandbox, nothing_left: NothingLeft) -> None:
    """A test that leaves an object behind fails once: the object is gone before the next test starts."""
    labels = {"app.kubernetes.io/managed-by": "kibertas-async", "kibertas-async/run-id": "kit-sweep"}
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kit-swept", "labels": labels}}
    kubectl(sandbox, "sandbox-1", "-n", "default", "apply", "-f", "-", input=json.dumps(manifest))

    with pytest.raises(AssertionError) as failure:
        nothing_left()

    assert str(failure.value) == (
        "left behind by kibertas-async: ['sandbox-1: ConfigMap default/kit-swept']; swept away since"
    )
    assert leftovers(sandbox) == []


def test_a_run_a_failing_test_leaves_going_cleans_up_first(sandbox: Sandbox, check_runner: CheckRunner) -> None:
    """The test fails while its background run is stopped (SIGSTOP) with objects created: leaving the
    ``with`` block continues the run and ends it with SIGTERM, so it deletes them, as for a user."""
    started: list[BackgroundRun] = []
    with pytest.raises(RuntimeError, match="the test failed"):
        _fail_while_the_run_is_stopped(sandbox, check_runner, started)

    (running,) = started
    assert running.process.returncode == 128 + signal.SIGTERM
    assert leftovers(sandbox) == []


def _fail_while_the_run_is_stopped(sandbox: Sandbox, check_runner: CheckRunner, started: list[BackgroundRun]) -> None:
    with check_runner.start("cert-manager", clusters=["sandbox-1"]) as running:
        started.append(running)
        for event in running.events():
            if event.get("event") == "step.started" and event["step"] == "issue CA certificate":
                break
        running.send_signal(signal.SIGSTOP)
        assert leftovers(sandbox), "the run created its namespace before this step"
        raise RuntimeError("the test failed")
