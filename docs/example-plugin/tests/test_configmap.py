"""The ``configmap-roundtrip`` check's tests: the real CLI on the two clusters of kibertas-async's sandbox.

``pip install -e .`` (with kibertas-async installed), then ``pytest``: kibertas-async's pytest plugin gives
the ``sandbox`` (real kube-apiservers, started once per session), ``check_runner`` and ``nothing_left``
fixtures. A check that cannot fail proves nothing, so the second test breaks a cluster on purpose.
"""

from __future__ import annotations

from kibertas_async import Outcome
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner

CHECK = "configmap-roundtrip"


def test_passes_on_both_clusters_and_leaves_nothing(check_runner: CheckRunner, nothing_left: NothingLeft) -> None:
    run = check_runner.run(CHECK, "--configmap-greeting", "hi from the tests")

    assert run.code == 0, run.err
    for cluster in ("sandbox-1", "sandbox-2"):
        result = run.result(cluster)
        assert result.outcome is Outcome.PASSED, result.reason
        assert [step.name for step in result.steps] == ["create ConfigMap", "read it back"]
        assert result.facts["resourceVersion"].isdigit()
        assert [item.status for item in result.cleanup] == ["done", "done"]
    nothing_left(run)


def test_an_api_server_that_stops_answering_times_out_and_the_other_cluster_passes(
    check_runner: CheckRunner, nothing_left: NothingLeft
) -> None:
    frozen_cluster = check_runner.sandbox.cluster("sandbox-2")
    with frozen_cluster.unreachable():  # frozen: connections open, nothing answers
        # The cleanup time box must cover sandbox-1's namespace deletion (the namespace controller waits
        # 5 s before it starts, more on a busy machine); on the frozen cluster it bounds the wait.
        run = check_runner.run(CHECK, "--check-timeout", "5s", "--cleanup-timeout", "20s")

    assert run.code == 1
    passed = run.result("sandbox-1")
    assert passed.outcome is Outcome.PASSED, passed.reason
    assert [item.status for item in passed.cleanup] == ["done", "done"], passed.cleanup
    frozen = run.result("sandbox-2")
    assert frozen.outcome is Outcome.TIMEOUT, frozen
    assert frozen.reason == "check did not finish within 5s", frozen.reason
    nothing_left(run)
