"""The scale-up checks against the sandbox (two clusters, each with kwok nodes, the sandbox autoscaler
for ``cluster-autoscaler`` and the real Karpenter with its KWOK provider for ``karpenter``).

Every test ends by proving that nothing labelled by the run remains and that the nodes the sandbox
autoscaler or Karpenter added are gone again, so the next test counts the same nodes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from kibertas_async import Outcome
from kibertas_async.testing import TEST_CLUSTER_NAMES
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import RunResult

RunChecks = Callable[..., RunResult]
"""The ``run`` fixture (see conftest.py): ``run("karpenter", "--flag", ..., clusters=(...))``."""
AutoscalerSettings = Callable[..., AbstractContextManager[None]]
"""The ``sandbox_autoscaler`` fixture: ``with sandbox_autoscaler(enabled="false"):``."""


def _show(done: RunResult, check: str) -> None:
    """Print the figures the issue asks for (visible with ``pytest -s``)."""
    for cluster in TEST_CLUSTER_NAMES:
        for result in [r for r in done.results if r.check == check and r.cluster == cluster]:
            print(
                f"{check} on {cluster}: {result.outcome.value} in {result.duration}s, "
                f"{result.api_requests} API requests; run wall time {done.wall_time:.1f}s"
            )


def test_cluster_autoscaler_passes_on_both_clusters_and_names_the_new_node(run: RunChecks) -> None:
    done = run("cluster-autoscaler")
    _show(done, "cluster-autoscaler")
    assert done.code == 0, done.report_json
    for cluster in TEST_CLUSTER_NAMES:
        result = done.result(cluster, "cluster-autoscaler")
        assert result.outcome is Outcome.PASSED, result
        assert result.facts["schedulable nodes before"].startswith("2 (kwok-node-3, kwok-node-4)")
        assert result.facts["nodes joined"].startswith("autoscaled-spot-")
        assert "hosts a probe pod" in result.facts["nodes joined"]
        assert "until 3/3 Ready" in result.facts["scale-up took"]
        assert [step.name for step in result.steps] == [
            "find node group",
            "count schedulable nodes",
            "create probe Deployment",
            "wait for scale-up",
            "report joined nodes",
        ]
        assert {item.status for item in result.cleanup} == {"done"}


def test_karpenter_reports_the_nodeclaim_and_verifies_scale_down(run: RunChecks) -> None:
    """Real Karpenter: its NodeClaim, the KWOK provider's node for it, and its consolidation removing both."""
    done = run("karpenter", "--verify-scale-down")
    _show(done, "karpenter")
    assert done.code == 0, done.report_json
    for cluster in TEST_CLUSTER_NAMES:
        result = done.result(cluster, "karpenter")
        assert result.outcome is Outcome.PASSED, result
        facts = result.facts
        assert facts["NodePool"] == "default"
        assert facts["NodePool limits"].startswith("limits cpu=16; in use "), facts["NodePool limits"]
        assert facts["schedulable nodes before"] == "0"
        assert facts["NodeClaim created"].startswith("default-")
        claim = facts["NodeClaim created"].split(" ")[0]
        # The KWOK provider names a NodeClaim's node kwok-<NodeClaim>-<random>.
        assert facts["nodes joined"].startswith(f"kwok-{claim}-"), facts
        assert "hosts a probe pod" in facts["nodes joined"]
        node = facts["nodes joined"].split(" ")[0]
        assert f"(node {node}," in facts["NodeClaim created"]
        assert facts["scale-down"].startswith(f"{claim}, {node} removed")
        assert [step.name for step in result.steps] == [
            "find node group",
            "count schedulable nodes",
            "create probe Deployment",
            "wait for scale-up",
            "report joined nodes",
            "wait for scale-down",
        ]


def test_node_count_checks_never_run_at_once_on_one_cluster(run: RunChecks) -> None:
    """Exclusive: one check's steps and undo actions end before the other's start. Only the wait for its
    namespace to disappear (kube-controller-manager starts emptying it 5 s after the delete) may overlap."""
    done = run("cluster-autoscaler", "karpenter", clusters=("sandbox-1",))
    assert done.code == 0, done.report_json
    spans = []
    for check in ("cluster-autoscaler", "karpenter"):
        result = done.result("sandbox-1", check)
        assert result.outcome is Outcome.PASSED, result
        assert {item.status for item in result.cleanup} == {"done"}, result.cleanup
        events = [e for e in done.events if e.get("check") == check and e.get("cluster") == "sandbox-1"]
        started = next(at(e) for e in events if e["event"] == "check.started")
        undone = max(
            at(e)
            for e in events
            if e["event"] == "cleanup.done" and not str(e["action"]).startswith("delete Namespace ")
        )
        spans.append((started, undone))
    (_, first_undone), (second_start, _) = sorted(spans)
    assert first_undone <= second_start, spans


def at(event: dict[str, Any]) -> datetime:
    """When an event was logged."""
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))


def test_autoscaler_absent_times_out_in_the_wait_step_with_the_scheduler_reason(
    run: RunChecks, sandbox_autoscaler: AutoscalerSettings
) -> None:
    with sandbox_autoscaler(enabled="false"):
        done = run("cluster-autoscaler", "--scale-up-timeout", "6s")
    assert done.code == 1
    for cluster in TEST_CLUSTER_NAMES:
        result = done.result(cluster, "cluster-autoscaler")
        assert result.outcome is Outcome.TIMEOUT, result
        assert result.step == "wait for scale-up"
        reason = result.reason
        assert re.match(
            r"step 'wait for scale-up' did not finish within 6s \(last seen: \d/\d ready, \d Pending: "
            r"FailedScheduling: 0/4 nodes are available: ",
            reason,
        ), reason
        assert "didn't match pod anti-affinity rules" in reason
        assert {item.status for item in result.cleanup} == {"done"}


def test_scale_down_that_does_not_happen_times_out_naming_the_node(
    run: RunChecks, sandbox_autoscaler: AutoscalerSettings
) -> None:
    with sandbox_autoscaler(scale_down_delay="3600"):
        done = run("cluster-autoscaler", "--verify-scale-down", "--scale-down-timeout", "4s")
    assert done.code == 1
    for cluster in TEST_CLUSTER_NAMES:
        result = done.result(cluster, "cluster-autoscaler")
        assert result.outcome is Outcome.TIMEOUT, result
        assert result.step == "wait for scale-down"
        node = result.facts["nodes joined"].split(" ")[0]
        assert result.reason == f"step 'wait for scale-down' did not finish within 4s (last seen: still there: {node})"


def test_karpenter_fails_when_the_nodepool_does_not_exist(run: RunChecks, nothing_left: NothingLeft) -> None:
    done = run("karpenter", "--karpenter-nodepool", "gpu")
    assert done.code == 1
    for cluster in TEST_CLUSTER_NAMES:
        result = done.result(cluster, "karpenter")
        assert result.outcome is Outcome.FAILED, result
        assert result.step == "find node group"
        assert result.reason == "NodePool 'gpu' does not exist; NodePools here: default"
    nothing_left(done)


def test_node_group_at_its_maximum_times_out_with_the_autoscalers_word(
    run: RunChecks, sandbox_autoscaler: AutoscalerSettings, nothing_left: NothingLeft
) -> None:
    with sandbox_autoscaler(max_nodes="0"):
        done = run("cluster-autoscaler", "--scale-up-timeout", "5s")
    assert done.code == 1
    for cluster in TEST_CLUSTER_NAMES:
        autoscaler = done.result(cluster, "cluster-autoscaler")
        assert (autoscaler.outcome, autoscaler.step) == (Outcome.TIMEOUT, "wait for scale-up"), autoscaler
        assert autoscaler.reason.endswith(
            "; cluster-autoscaler: NotTriggerScaleUp: pod didn't trigger scale-up: 1 max node group size reached)"
        )
    nothing_left(done)


def test_karpenter_is_ng_with_its_own_reason_when_the_nodepool_limits_forbid_the_node(
    run: RunChecks, nodepool_limited: str, nothing_left: NothingLeft
) -> None:
    """Karpenter's provisioner refuses (its FailedScheduling on the probe pod): NG at once, no timeout."""
    done = run("karpenter")
    assert done.code == 1
    for cluster in TEST_CLUSTER_NAMES:
        result = done.result(cluster, "karpenter")
        assert (result.outcome, result.step) == (Outcome.FAILED, "wait for scale-up"), result
        assert result.reason.startswith(
            "Karpenter will not provision a node for 1 probe pod(s): karpenter: FailedScheduling: Failed to "
            "schedule pod, all available instance types exceed limits for nodepool (NodePool=default); "
            f"NodePool default: limits {nodepool_limited}; in use cpu="
        ), result.reason
        assert result.facts["NodePool limits"].startswith(f"limits {nodepool_limited};")
        assert "NodeClaim created" not in result.facts
        assert {item.status for item in result.cleanup} == {"done"}
    nothing_left(done)


def test_karpenter_is_ng_when_its_controller_is_stopped(
    run: RunChecks, karpenter_stopped: None, nothing_left: NothingLeft
) -> None:
    """No Karpenter process: no NodeClaim and no Event from karpenter, so NG after the response timeout
    (not the 90 s scale-up timeout), with the scheduler's word in the step's detail."""
    done = run("karpenter", "--karpenter-response-timeout", "10s")
    assert done.code == 1
    for cluster in TEST_CLUSTER_NAMES:
        result = done.result(cluster, "karpenter")
        assert (result.outcome, result.step) == (Outcome.FAILED, "wait for scale-up"), result
        assert result.reason == (
            "Karpenter did not act within 10s of the probe pods becoming Unschedulable: no NodeClaim for "
            "NodePool default and no Event from karpenter on 1 pending probe pod(s); its controller is not "
            "running, or not provisioning for this NodePool"
        ), result.reason
        [step] = [step for step in result.steps if step.name == "wait for scale-up"]
        assert step.detail.startswith("0/1 ready, 1 Pending: FailedScheduling: 0/4 nodes are available: "), step
        assert {item.status for item in result.cleanup} == {"done"}
    nothing_left(done)


def test_tainted_nodes_are_not_counted_unless_the_probe_tolerates_them(
    run: RunChecks, tainted_spot_node: str, scaled_back: Callable[[], None]
) -> None:
    untolerated = run("cluster-autoscaler")
    scaled_back()  # else the first run's node, still there, is counted by the second
    tolerated = run("cluster-autoscaler", "--scale-up-tolerations", tainted_spot_node)
    assert (untolerated.code, tolerated.code) == (0, 0), [
        (r.cluster, r.outcome, r.step, r.reason, r.facts) for done in (untolerated, tolerated) for r in done.results
    ]
    for cluster in TEST_CLUSTER_NAMES:
        facts = untolerated.result(cluster, "cluster-autoscaler").facts
        assert facts["schedulable nodes before"] == (
            "1 (kwok-node-3); not counted: kwok-node-4 (tainted dedicated=spot:NoSchedule)"
        )
        assert "until 2/2 Ready" in facts["scale-up took"]
        facts = tolerated.result(cluster, "cluster-autoscaler").facts
        assert facts["schedulable nodes before"] == "2 (kwok-node-3, kwok-node-4)"
        assert "until 3/3 Ready" in facts["scale-up took"]


def test_karpenter_is_skipped_where_its_api_is_not_served(
    run: RunChecks, without_nodepool_api: None, nothing_left: NothingLeft
) -> None:
    done = run("karpenter")
    assert done.code == 0, done.report_json
    for cluster in TEST_CLUSTER_NAMES:
        result = done.result(cluster, "karpenter")
        assert (result.outcome, result.step) == (Outcome.SKIPPED, "find node group"), result
        assert result.reason == "the karpenter.sh/v1 API is not served here: Karpenter is not installed"
    nothing_left(done)
