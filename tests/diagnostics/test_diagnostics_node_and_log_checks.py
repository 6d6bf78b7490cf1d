"""Failure diagnostics of the two built-in checks the other sandbox tests leave out: fluent (its
shipper's DaemonSet degraded) and karpenter (a NodePool that does not exist)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kibertas_async import Outcome
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner
from kibertas_async.testing.workloads import daemonset_on_no_node
from tests.diagnostics.test_diagnostics_sandbox import _assert_bounded_and_cleaned_up

BROKEN = "sandbox-2"


@pytest.fixture
def fluentd_degraded(sandbox: Sandbox) -> Iterator[None]:
    """BROKEN's fluentd DaemonSet selects no node (its pods go away); restored and rolled out afterwards."""
    with daemonset_on_no_node(sandbox, BROKEN, "logging", "fluentd"):
        yield


def test_fluent_with_its_shipper_degraded_names_the_daemonset_first(
    check_runner: CheckRunner, fluentd_degraded: None, nothing_left: NothingLeft
) -> None:
    run = check_runner.run("fluent", "--log-wait-timeout", "6s", clusters=[BROKEN])
    result = run.result(BROKEN)
    assert result.outcome is Outcome.FAILED, result
    assert result.step == "find marker in S3"
    first = result.diagnostics[0]
    assert first.source == "workload logging/fluentd", result.diagnostics
    assert first.title.startswith("DaemonSet logging/fluentd: 0/0 pods ready"), first
    assert 'nodeSelector {"kibertas-async.test/no-such-node": "true"} matches no node' in first.title
    logs = [d for d in result.diagnostics if d.source.startswith("log logging/")]
    assert [d.title for d in logs] == ["no logs: fluentd has no pods"]
    _assert_bounded_and_cleaned_up(run, result)
    nothing_left(run)


def test_karpenter_without_its_nodepool_fails_and_says_where_karpenter_is_not(
    check_runner: CheckRunner, nothing_left: NothingLeft
) -> None:
    run = check_runner.run("karpenter", "--karpenter-nodepool", "gpu", clusters=[BROKEN])
    result = run.result(BROKEN)
    assert result.outcome is Outcome.FAILED, result
    assert (result.step, result.reason) == ("find node group", "NodePool 'gpu' does not exist; NodePools here: default")
    # The sandbox runs Karpenter as a process beside the cluster, not in it: the diagnostics say so plainly.
    [workload] = [d for d in result.diagnostics if d.source == "workload kube-system/karpenter"]
    assert workload.title.startswith("karpenter: no Deployment or DaemonSet karpenter in namespace kube-system")
    _assert_bounded_and_cleaned_up(run, result)
    nothing_left(run)
