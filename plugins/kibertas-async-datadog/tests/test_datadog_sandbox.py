"""The datadog-agent check against the sandbox's Datadog stand-in: pass, agent down, bad keys, and
Datadog answering 429 or 5xx (through the stand-in's fault switch)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator

import pytest

from kibertas_async import Outcome
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner
from kibertas_async.testing.workloads import daemonset_on_no_node
from kibertas_async_datadog.check import STEP_WAIT_FOR_METRICS
from kibertas_async_datadog.sandbox import AGENT_NAMESPACE, api_key_for, app_key_for
from kibertas_async_datadog.standin import AGENT_NAME, StandinControl

CHECK = "datadog-agent"
StandinStats = Callable[[str], dict[str, int]]
AGENT_POD_SELECTOR = f"app.kubernetes.io/name={AGENT_NAME}"


@pytest.fixture
def agent_stopped(sandbox: Sandbox) -> Iterator[None]:
    """sandbox-1's agent DaemonSet selects no node (its pods go away); restored and Ready afterwards."""
    with daemonset_on_no_node(sandbox, "sandbox-1", AGENT_NAMESPACE, AGENT_NAME):
        yield


def test_passes_on_both_clusters_scoped_to_each(check_runner: CheckRunner, nothing_left: NothingLeft) -> None:
    run = check_runner.run(CHECK)
    assert run.code == 0, run.err
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.PASSED
        assert result.facts["query"] == f"avg:kubernetes.cpu.user.total{{kube_cluster_name:{cluster}}}"
        assert result.facts["scope"] == f"kube_cluster_name:{cluster}"
        assert int(result.facts["points"]) >= 1
        for key in (api_key_for(cluster), app_key_for(cluster)):
            assert key not in run.err + run.out + json.dumps(run.report_json)
    nothing_left()


def test_another_clusters_tag_gets_an_empty_series(check_runner: CheckRunner) -> None:
    run = check_runner.run(CHECK, "--datadog-cluster-name", "some-other-cluster", "--datadog-wait-timeout", "3s")
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.FAILED
        assert result.step == STEP_WAIT_FOR_METRICS
        assert "kube_cluster_name:some-other-cluster" in result.reason
        assert "stayed empty" in result.reason


@pytest.mark.usefixtures("agent_stopped")
def test_agent_not_running_fails_with_empty_series(check_runner: CheckRunner, nothing_left: NothingLeft) -> None:
    run = check_runner.run(CHECK, "--datadog-wait-timeout", "5s")
    assert run.code == 1
    stopped = run.result("sandbox-1")
    assert stopped.outcome is Outcome.FAILED
    assert stopped.step == STEP_WAIT_FOR_METRICS
    assert stopped.reason.startswith(
        "the series of avg:kubernetes.cpu.user.total{kube_cluster_name:sandbox-1} stayed empty for 5s"
    )
    assert "last: empty series" in stopped.reason
    assert run.result("sandbox-2").outcome is Outcome.PASSED
    nothing_left()


def test_bad_keys_fail_at_once_without_retrying(check_runner: CheckRunner, standin_stats: StandinStats) -> None:
    before = {cluster: standin_stats(cluster) for cluster in ("sandbox-1", "sandbox-2")}
    wrong_key = "wrong-api-key-0f9e8d7c"
    run = check_runner.run(CHECK, "--datadog-api-key", wrong_key)
    assert run.code == 1
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.FAILED
        assert result.step == STEP_WAIT_FOR_METRICS
        assert result.reason.startswith("Datadog rejected the API or application key (HTTP 403: Forbidden)")
        after = standin_stats(cluster)
        assert after["requests"] - before[cluster]["requests"] == 1
        assert after["rejected"] - before[cluster]["rejected"] == 1
        assert app_key_for(cluster) not in run.err + run.out + json.dumps(run.report_json)
    assert wrong_key not in run.err + run.out + json.dumps(run.report_json)


def test_missing_keys_fail_before_any_query(check_runner: CheckRunner, standin_stats: StandinStats) -> None:
    before = standin_stats("sandbox-1")["requests"]
    run = check_runner.run(CHECK, "--datadog-app-key", "")
    result = run.result("sandbox-1")
    assert result.outcome is Outcome.FAILED
    assert result.reason == "not configured: --datadog-app-key (DD_APP_KEY) must be set"
    assert standin_stats("sandbox-1")["requests"] == before


def _gaps(requests: list[dict[str, float]]) -> list[float]:
    return [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(requests)]


def test_rate_limited_twice_waits_as_asked_then_passes(
    check_runner: CheckRunner, standin_stats: StandinStats, standin_control: StandinControl
) -> None:
    before = standin_stats("sandbox-1")["requests"]
    standin_control.fault("sandbox-1", status=429, count=2, retry_after=2, ratelimit_reset=1)
    run = check_runner.run(CHECK)
    assert run.code == 0, run.err
    result = run.result("sandbox-1")
    assert result.outcome is Outcome.PASSED
    assert result.facts["attempts"] == "3"
    requests = standin_control.requests_after("sandbox-1", before)
    assert [request["status"] for request in requests] == [429, 429, 200]
    # Retry-After (2 s) wins over X-RateLimit-Reset (1 s) and over our own first backoff (about 2 s).
    assert all(gap >= 2.0 for gap in _gaps(requests)), _gaps(requests)
    assert run.result("sandbox-2").outcome is Outcome.PASSED


def test_a_server_error_is_retried_then_passes(
    check_runner: CheckRunner, standin_stats: StandinStats, standin_control: StandinControl
) -> None:
    before = standin_stats("sandbox-1")["requests"]
    standin_control.fault("sandbox-1", status=503, count=1)
    run = check_runner.run(CHECK)
    assert run.code == 0, run.err
    assert run.result("sandbox-1").outcome is Outcome.PASSED
    assert [request["status"] for request in standin_control.requests_after("sandbox-1", before)] == [503, 200]


@pytest.mark.parametrize(
    ("deadline", "reason_start"),
    [
        ("--datadog-wait-timeout", "no answer from Datadog within 4s ("),
        ("--check-timeout", f"check did not finish within 4s; step '{STEP_WAIT_FOR_METRICS}' was still running"),
    ],
)
def test_a_rate_limit_that_outlasts_the_wait_is_a_timeout_naming_it(
    check_runner: CheckRunner,
    standin_stats: StandinStats,
    standin_control: StandinControl,
    deadline: str,
    reason_start: str,
) -> None:
    before = standin_stats("sandbox-1")["requests"]
    standin_control.fault("sandbox-1", status=429, count=1000, ratelimit_reset=2)
    run = check_runner.run(CHECK, deadline, "4s")
    assert run.code == 1
    result = run.result("sandbox-1")
    assert result.outcome is Outcome.TIMEOUT
    assert result.step == STEP_WAIT_FOR_METRICS
    assert result.reason.startswith(reason_start), result.reason
    assert "rate limited by Datadog (retry after 2s)" in result.reason
    requests = standin_control.requests_after("sandbox-1", before)
    assert {request["status"] for request in requests} == {429}
    assert all(gap >= 2.0 for gap in _gaps(requests)), _gaps(requests)
    assert run.result("sandbox-2").outcome is Outcome.PASSED
