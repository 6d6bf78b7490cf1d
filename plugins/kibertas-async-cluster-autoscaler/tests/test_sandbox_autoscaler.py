"""The sandbox autoscaler itself: it must outlive the churn of a busy cluster, since every later scale-up
test of the session depends on it."""

from __future__ import annotations

import json
import secrets
import time

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl

REPLICAS = 40
SETTLE_TIMEOUT = 120.0


def _deployment(namespace: str) -> str:
    """``REPLICAS`` pods that no node and no node group can take: each gets a NotTriggerScaleUp Event."""
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "nowhere", "namespace": namespace},
            "spec": {
                "replicas": REPLICAS,
                "selector": {"matchLabels": {"app": "nowhere"}},
                "template": {
                    "metadata": {"labels": {"app": "nowhere"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 0,
                        "nodeSelector": {"kibertas-async.test/nowhere": "true"},
                        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}],
                    },
                },
            },
        }
    )


def test_the_sandbox_autoscaler_survives_pods_changing_while_it_records_events(clean_sandbox: Sandbox) -> None:
    # While it records an Event on one pending pod (an await), the pods keep coming and going; it used to
    # iterate its live pod cache across those awaits and die ("dictionary changed size during iteration").
    cluster = clean_sandbox.cluster("sandbox-1")
    autoscaler = cluster.processes["sandbox-autoscaler"]
    namespace = f"autoscaler-churn-{secrets.token_hex(3)}"
    kubectl(clean_sandbox, cluster, "create", "namespace", namespace)
    try:
        kubectl(clean_sandbox, cluster, "apply", "-f", "-", input=_deployment(namespace))
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            assert autoscaler.is_alive(), f"the sandbox autoscaler died; its log ends:\n{autoscaler.log_tail()}"
            events = json.loads(
                kubectl(
                    clean_sandbox,
                    cluster,
                    "-n",
                    namespace,
                    "get",
                    "events",
                    "--field-selector",
                    "reason=NotTriggerScaleUp",
                    "-o",
                    "json",
                ).stdout
            )["items"]
            told = {event["involvedObject"]["name"] for event in events}
            if len(told) >= REPLICAS:
                break
            assert time.monotonic() < deadline, f"only {len(told)}/{REPLICAS} pending pods got the autoscaler's word"
            time.sleep(0.5)
    finally:
        kubectl(clean_sandbox, cluster, "delete", "namespace", namespace, "--wait", "--timeout=120s")
    time.sleep(1.0)  # the deletions reach it
    assert autoscaler.is_alive(), f"the sandbox autoscaler died; its log ends:\n{autoscaler.log_tail()}"
