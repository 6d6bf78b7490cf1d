"""The fluent check against the sandbox's moto S3 and log shipper: pass, fluentd down, no bucket, foreign logs."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator

import pytest

from kibertas_async import Outcome
from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner
from kibertas_async.testing.workloads import daemonset_on_no_node
from kibertas_async_fluent.check import STEP_CHECK_BUCKET, STEP_FIND_MARKER
from kibertas_async_fluent.sandbox import FLUENTD_NAMESPACE, SECRET_ACCESS_KEY
from kibertas_async_fluent.shipper import FLUENTD_DAEMONSET

CHECK = "fluent"


@pytest.fixture
def fluentd_stopped(sandbox: Sandbox) -> Iterator[None]:
    """sandbox-1's fluentd DaemonSet selects no node (its pods go away); restored and Ready afterwards."""
    with daemonset_on_no_node(sandbox, "sandbox-1", FLUENTD_NAMESPACE, FLUENTD_DAEMONSET):
        yield


@pytest.fixture
def foreign_namespace(sandbox: Sandbox) -> Iterator[str]:
    """A namespace on both clusters with a pod that logs lines that are not ours (shipped to S3)."""
    name = f"foreign-logs-{secrets.token_hex(3)}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "chatty", "namespace": name},
        "spec": {
            "containers": [
                {
                    "name": "chatty",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", 'while true; do echo "somebody else\'s log line"; sleep 1; done'],
                }
            ]
        },
    }
    for cluster in ("sandbox-1", "sandbox-2"):
        kubectl(sandbox, cluster, "create", "namespace", name)
        kubectl(sandbox, cluster, "apply", "-f", "-", input=json.dumps(pod))
        kubectl(sandbox, cluster, "-n", name, "wait", "--for=condition=Ready", "pod/chatty", "--timeout=60s")
    try:
        yield name
    finally:
        for cluster in ("sandbox-1", "sandbox-2"):
            kubectl(sandbox, cluster, "delete", "namespace", name, "--wait=true", "--timeout=120s")


def test_passes_on_both_clusters(check_runner: CheckRunner, nothing_left: NothingLeft) -> None:
    run = check_runner.run(CHECK)
    assert run.code == 0, run.err
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.PASSED
        facts = result.facts
        assert facts["marker"].startswith(f"kibertas-async-marker-{run.run_id}-")
        assert re.fullmatch(
            r"s3://kubernetes-logs/fluentd/test/fluent-test-\d{8}-[a-z0-9]{5}/dt=\d{8}/.+\.gz", facts["object"]
        )
        assert facts["replicas"] == "1"  # two spot nodes: 2 // 3 + 1
    assert SECRET_ACCESS_KEY not in run.err + run.out + json.dumps(run.report_json)
    nothing_left()


@pytest.mark.usefixtures("fluentd_stopped")
def test_fluentd_not_running_means_no_object(check_runner: CheckRunner, nothing_left: NothingLeft) -> None:
    run = check_runner.run(CHECK, "--log-wait-timeout", "6s")
    assert run.code == 1
    stopped = run.result("sandbox-1")
    assert stopped.outcome is Outcome.FAILED
    assert stopped.step == STEP_FIND_MARKER
    assert re.fullmatch(
        r"after 6s and \d+ listings: no object under s3://kubernetes-logs/fluentd/test/fluent-test-\d{8}-[a-z0-9]{5}/dt=\d{8}",
        stopped.reason,
    ), stopped.reason
    assert run.result("sandbox-2").outcome is Outcome.PASSED
    nothing_left()


def test_missing_bucket_fails_at_once(check_runner: CheckRunner, nothing_left: NothingLeft) -> None:
    run = check_runner.run(CHECK, "--log-bucket-name", "no-such-bucket-for-logs")
    assert run.code == 1
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.FAILED
        assert result.step == STEP_CHECK_BUCKET
        assert [step.name for step in result.steps] == [STEP_CHECK_BUCKET]  # nothing was created
        assert result.reason.startswith(
            "bucket no-such-bucket-for-logs does not exist (NoSuchBucket) at http://127.0.0.1:"
        )
    nothing_left()


def test_objects_without_our_marker_are_counted_not_accepted(
    check_runner: CheckRunner, nothing_left: NothingLeft, foreign_namespace: str
) -> None:
    run = check_runner.run(
        CHECK, "--log-path", f"fluentd/{{env}}/{foreign_namespace}/dt={{date:%Y%m%d}}", "--log-wait-timeout", "8s"
    )
    assert run.code == 1
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.FAILED
        assert result.step == STEP_FIND_MARKER
        pattern = (
            rf"after 8s and \d+ listings: (\d+) objects under s3://kubernetes-logs/fluentd/test/{foreign_namespace}"
            r"/dt=\d{8} \((\d+) newer than the start\), none contains marker kibertas-async-marker-\S+"
        )
        match = re.fullmatch(pattern, result.reason)
        assert match, result.reason
        assert int(match[1]) >= int(match[2]) >= 1
    nothing_left()
