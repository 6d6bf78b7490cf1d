"""The kit's workload fault: a DaemonSet that selects no node for the block, mended afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl
from kibertas_async.testing.workloads import NO_SUCH_NODE, daemonset_on_no_node

CLUSTER = "sandbox-1"
OWN_SELECTOR = {"kubernetes.io/os": "linux"}


@pytest.fixture
def agent(sandbox: Sandbox) -> Iterator[str]:
    """A DaemonSet of the test's own, with a node selector of its own, in a namespace deleted afterwards."""
    namespace = "kit-workloads-test"
    labels = {"app.kubernetes.io/name": "kit-agent"}
    documents = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kit-agent", "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "nodeSelector": OWN_SELECTOR,
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [{"name": "agent", "image": "kit-agent:1"}],
                    },
                },
            },
        },
    ]
    kubectl(sandbox, CLUSTER, "apply", "-f", "-", input="\n".join(json.dumps(d) for d in documents))
    kubectl(sandbox, CLUSTER, "-n", namespace, "rollout", "status", "daemonset/kit-agent", "--timeout=120s")
    yield namespace
    kubectl(sandbox, CLUSTER, "delete", "namespace", namespace, "--wait=false")


def _state(sandbox: Sandbox, namespace: str) -> tuple[dict[str, str], int]:
    found = json.loads(kubectl(sandbox, CLUSTER, "-n", namespace, "get", "daemonset/kit-agent", "-o", "json").stdout)
    selector = "app.kubernetes.io/name=kit-agent"
    listed = kubectl(sandbox, CLUSTER, "-n", namespace, "get", "pods", "-l", selector, "-o", "json")
    pods = json.loads(listed.stdout)["items"]
    return found["spec"]["template"]["spec"].get("nodeSelector") or {}, len(pods)


def test_the_daemonset_runs_no_pod_in_the_block_and_gets_its_own_selector_back(sandbox: Sandbox, agent: str) -> None:
    selector, pods = _state(sandbox, agent)
    assert selector == OWN_SELECTOR and pods > 0
    with daemonset_on_no_node(sandbox, CLUSTER, agent, "kit-agent"):
        selector, pods = _state(sandbox, agent)
        assert selector == {**OWN_SELECTOR, **NO_SUCH_NODE}
        assert pods == 0
    selector, pods = _state(sandbox, agent)
    assert selector == OWN_SELECTOR and pods > 0
