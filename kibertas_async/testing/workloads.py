"""Breaking an add-on's workload on a sandbox cluster for the length of a test, and mending it after.

The failure tests of every agent-style add-on (datadog-agent, fluentd, ...) need the same fault: the
agent's pods are gone, as when a DaemonSet is mis-scheduled or its nodes are cordoned. That is
:func:`daemonset_on_no_node`, for plugin suites and the project's own tests alike.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.testing import kubectl

NO_SUCH_NODE = {"kibertas-async.test/no-such-node": "true"}
"""The node selector :func:`daemonset_on_no_node` adds: no node carries that label."""


@contextlib.contextmanager
def daemonset_on_no_node(
    sandbox: Sandbox, cluster: str | SandboxCluster, namespace: str, name: str, *, timeout: str = "120s"
) -> Iterator[None]:
    """Within the block, the DaemonSet ``namespace/name`` selects no node, so it runs no pod (the block
    starts once its pods are gone); afterwards its own node selector is back and it is rolled out again.

    A check of the add-on then meets what a real cluster shows when the agent is not running: a
    DaemonSet with 0 pods, ``nodeSelector {"kibertas-async.test/no-such-node": "true"} matches no node``.
    """
    daemonset = f"daemonset/{name}"
    found = json.loads(kubectl(sandbox, cluster, "-n", namespace, "get", daemonset, "-o", "json").stdout)
    pods = ",".join(f"{key}={value}" for key, value in found["spec"]["selector"]["matchLabels"].items())
    own_selector = found["spec"]["template"]["spec"].get("nodeSelector")

    def node_selector(selector: dict[str, str] | None) -> None:
        patch = json.dumps({"spec": {"template": {"spec": {"nodeSelector": selector}}}})
        kubectl(sandbox, cluster, "-n", namespace, "patch", daemonset, "--type=merge", "-p", patch)

    node_selector(NO_SUCH_NODE)
    try:
        kubectl(sandbox, cluster, "-n", namespace, "wait", "--for=delete", "pod", "-l", pods, f"--timeout={timeout}")
        yield
    finally:
        # A merge patch of null removes the key; the DaemonSet's own selector (if it had one) is put back.
        node_selector(None)
        if own_selector:
            node_selector(own_selector)
        kubectl(sandbox, cluster, "-n", namespace, "rollout", "status", daemonset, f"--timeout={timeout}")
