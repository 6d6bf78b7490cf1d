"""The node agent add-on: one sandbox node that really runs containers, with podman.

kwok's nodes run nothing. This opt-in add-on (not in ``default_addons()``) registers one more Node,
``<cluster>-podman``, labelled and tainted ``kibertas-async.io/node-agent=podman`` (``NoSchedule``), so only
a Pod that tolerates the taint and asks for the node (``nodeName`` or a ``nodeSelector``) lands there.
kwok leaves it alone: it manages only nodes annotated ``kwok.x-k8s.io/node=fake``. The agent process
(:mod:`kibertas_async.sandbox.nodeagent.agent`) keeps the Node's Lease and Ready condition, runs each of
its Pods' containers with rootful podman (``--network host``, the Pod's service-account token and the
cluster CA at the standard path, ``KUBERNETES_SERVICE_HOST=127.0.0.1``) and reports their phase and
exit codes, so the real Job controller completes or fails Jobs. Each container's output is kept in
``<work dir>/logs/<namespace>_<pod>_<container>.log`` once it stops (:func:`pod_log_path`).

Usage::

    SandboxConfig(addons=(KwokAddon(), NodeAgentAddon()))
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from kibertas_async.sandbox.addons import AddonContext
from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.processes import ProcessSpec

__all__ = [
    "NODE_AGENT_LABEL",
    "NODE_AGENT_TAINT",
    "NOT_ON_THE_AGENT_NODE",
    "NodeAgentAddon",
    "node_name",
    "pod_log_path",
    "podman_problem",
]

NODE_AGENT_LABEL = "kibertas-async.io/node-agent"
"""Label (value ``podman``) and taint key of the agent's node."""
NODE_AGENT_TAINT = {"key": NODE_AGENT_LABEL, "operator": "Equal", "value": "podman", "effect": "NoSchedule"}
"""The toleration a Pod needs to run on the agent's node."""
NOT_ON_THE_AGENT_NODE = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": NODE_AGENT_LABEL, "operator": "DoesNotExist"}]}]
        }
    }
}
"""Pod ``affinity`` for the sandbox's kwok-only stand-ins that tolerate every taint (DaemonSets like the
Helm charts'): without it their pods would land on the agent's node too, where podman would try to pull
an image no registry serves here. A real cluster has no such node, so the stand-ins lose nothing."""
_POLL_INTERVAL = 0.2


def node_name(cluster_name: str) -> str:
    """The agent's node on ``cluster_name``: ``<cluster>-podman``."""
    return f"{cluster_name}-podman"


def pod_log_path(work_dir: Path, namespace: str, pod: str, container: str) -> Path:
    """Where the agent keeps the output (stdout and stderr) of one container once it has stopped."""
    return work_dir / "logs" / f"{namespace}_{pod}_{container}.log"


def podman_problem(podman: str = "podman") -> str | None:
    """Why podman cannot run containers here (not installed, not root, ``podman info`` fails), or None."""
    import os

    if shutil.which(podman) is None:
        return f"{podman} is not installed (the node agent needs rootful podman with runc; see scripts/image)"
    if os.geteuid() != 0:
        return "the node agent needs rootful podman: run as root"
    try:
        info = subprocess.run([podman, "info"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`{podman} info` failed: {error}"
    if info.returncode != 0:
        return f"`{podman} info` failed: {info.stderr.strip()[-500:]}"
    return None


class NodeAgentAddon:
    """Runs one node agent per cluster; see the module docstring."""

    name = "node-agent"

    def __init__(self, podman: str = "podman") -> None:
        self.podman = podman

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """The agent process for this cluster, with the cluster's admin kubeconfig."""
        if (problem := podman_problem(self.podman)) is not None:
            raise SandboxError(f"{context.cluster_name}: node agent: {problem}")
        port = urlsplit(context.api.server).port
        argv = (
            sys.executable,
            "-m",
            "kibertas_async.sandbox.nodeagent",
            f"--kubeconfig={context.kubeconfig}",
            f"--node={node_name(context.cluster_name)}",
            f"--work-dir={context.work_dir}",
            f"--apiserver-port={port}",
            f"--podman={self.podman}",
        )
        return [ProcessSpec(f"{context.cluster_name}/node-agent", argv, context.work_dir / "node-agent.log")]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Return once the agent's node is Ready and has lost the not-ready taint (pods can be scheduled)."""
        name = node_name(context.cluster_name)
        deadline = time.monotonic() + timeout
        while not self._schedulable(context, name):
            if time.monotonic() >= deadline:
                raise SandboxError(
                    f"{context.cluster_name}: node {name} not Ready after {timeout:.0f}s; "
                    f"see {context.work_dir / 'node-agent.log'}"
                )
            time.sleep(_POLL_INTERVAL)

    def stop(self, context: AddonContext) -> None:
        """Remove any container the agent left (it removes its own on SIGTERM; this is the backstop)."""
        from kibertas_async.sandbox.nodeagent.podman import AGENT_DIR_LABEL

        if shutil.which(self.podman) is None:
            return
        listed = subprocess.run(
            [self.podman, "ps", "--all", "--quiet", "--filter", f"label={AGENT_DIR_LABEL}={context.work_dir}"],
            capture_output=True,
            text=True,
            check=False,
        )
        ids = listed.stdout.split()
        if ids:
            subprocess.run([self.podman, "rm", "--force", "--time", "0", *ids], capture_output=True, check=False)

    @staticmethod
    def _schedulable(context: AddonContext, name: str) -> bool:
        try:
            node = context.api.get(f"/api/v1/nodes/{name}")
        except ApiError:
            return False
        conditions = node.get("status", {}).get("conditions", [])
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        taints = node.get("spec", {}).get("taints", [])
        return ready and not any(t["key"] == "node.kubernetes.io/not-ready" for t in taints)
