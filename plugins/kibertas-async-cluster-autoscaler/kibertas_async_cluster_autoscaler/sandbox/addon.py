"""The sandbox add-on: runs the sandbox autoscaler (cluster-autoscaler's stand-in) beside each cluster.

Per cluster it creates the ConfigMap ``kube-system/sandbox-autoscaler`` (the switch: ``enabled``,
``scale-up-delay``, ``scale-down-delay``, ``max-nodes``) and starts the autoscaler process. Karpenter is
the real one, in its own add-on (:mod:`.karpenter`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kibertas_async.sandbox.addons import AddonContext
from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.processes import ProcessSpec
from kibertas_async_cluster_autoscaler.sandbox.config import CONFIGMAP_NAME, CONFIGMAP_NAMESPACE, AutoscalerConfig

_POLL_INTERVAL = 0.1


class SandboxAutoscalerAddon:
    """Starts ``python -m kibertas_async_cluster_autoscaler.sandbox.autoscaler`` per cluster."""

    name = "sandbox-autoscaler"

    def __init__(self, config: AutoscalerConfig | None = None) -> None:
        self.config = config or AutoscalerConfig()

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """Write the autoscaler's configuration and return its process."""
        config_file = context.work_dir / "config.json"
        config_file.write_text(
            replace(self.config, kubernetes_version=context.kubernetes_version).to_json(), encoding="utf-8"
        )
        ready_file = self._ready_file(context)
        ready_file.unlink(missing_ok=True)
        argv = (
            sys.executable,
            "-m",
            "kibertas_async_cluster_autoscaler.sandbox.autoscaler",
            f"--kubeconfig={context.kubeconfig}",
            f"--config={config_file}",
            f"--ready-file={ready_file}",
        )
        return [ProcessSpec(f"{context.cluster_name}/{self.name}", argv, context.work_dir / "autoscaler.log")]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Create the ConfigMap; wait for the process's first lists."""
        deadline = time.monotonic() + timeout
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP_NAME, "namespace": CONFIGMAP_NAMESPACE},
            "data": self.config.configmap_data(),
        }
        _create(context, f"/api/v1/namespaces/{CONFIGMAP_NAMESPACE}/configmaps", configmap)
        self._wait(context, deadline, "the autoscaler's first lists", self._ready_file(context).exists)

    def stop(self, context: AddonContext) -> None:
        """Nothing to release: its nodes and objects live in the cluster's data, which ``down`` removes."""

    def _ready_file(self, context: AddonContext) -> Path:
        return context.work_dir / "ready"

    def _wait(self, context: AddonContext, deadline: float, what: str, condition: Callable[[], bool]) -> None:
        while not condition():
            if time.monotonic() >= deadline:
                log = context.work_dir / "autoscaler.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
                raise SandboxError(f"{context.cluster_name}: {self.name}: timed out waiting for {what}; {log}:\n{tail}")
            time.sleep(_POLL_INTERVAL)


def _create(context: AddonContext, path: str, body: dict[str, Any]) -> None:
    try:
        context.api.create(path, body)
    except ApiError as error:
        if error.status != 409:  # already there
            raise SandboxError(f"{context.cluster_name}: could not create {body['kind']}: {error}") from error
