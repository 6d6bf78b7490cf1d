"""The sandbox add-on: runs the sandbox autoscaler beside each cluster, with Karpenter's API stand-ins.

Per cluster it installs minimal ``NodePool`` and ``NodeClaim`` CustomResourceDefinitions (group
``karpenter.sh``, version ``v1``, schema left open): STAND-INS, not Karpenter's own CRDs, so that the
``karpenter`` check finds the API it looks for and the sandbox autoscaler can record NodeClaims. It
creates the NodePool ``default`` and the ConfigMap ``kube-system/sandbox-autoscaler`` (the switch:
``enabled``, ``scale-up-delay``, ``scale-down-delay``), then starts the autoscaler process.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kibertas_async.sandbox.addons import AddonContext
from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.processes import ProcessSpec
from kibertas_async_cluster_autoscaler.sandbox.config import CONFIGMAP_NAME, CONFIGMAP_NAMESPACE, AutoscalerConfig

_POLL_INTERVAL = 0.1
_CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
_KARPENTER_GROUP = "karpenter.sh"


def karpenter_crd(kind: str, plural: str) -> dict[str, Any]:
    """A minimal cluster-scoped ``karpenter.sh/v1`` CRD with a status subresource and an open schema."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{_KARPENTER_GROUP}",
            "annotations": {"kibertas-async.sandbox/stand-in": "minimal CRD, not Karpenter's own"},
        },
        "spec": {
            "group": _KARPENTER_GROUP,
            "scope": "Cluster",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


CRDS = (karpenter_crd("NodePool", "nodepools"), karpenter_crd("NodeClaim", "nodeclaims"))


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
        """Install the Karpenter stand-in CRDs, the NodePools and the ConfigMap; wait for the process."""
        deadline = time.monotonic() + timeout
        for crd in CRDS:
            _create(context, _CRD_PATH, crd)
        for crd in CRDS:
            name = crd["metadata"]["name"]
            self._wait(context, deadline, f"CRD {name} Established", functools.partial(_established, context, name))
        for pool in sorted({g.nodepool for g in self.config.groups if g.nodepool is not None}):
            nodepool = {
                "apiVersion": f"{_KARPENTER_GROUP}/v1",
                "kind": "NodePool",
                "metadata": {"name": pool},
                "spec": {"template": {"spec": {"requirements": []}}},
            }
            # The API server serves a new CRD's paths a moment after Established: retry until it takes it.
            self._wait(
                context,
                deadline,
                f"NodePool {pool} created",
                functools.partial(_try_create, context, f"/apis/{_KARPENTER_GROUP}/v1/nodepools", nodepool),
            )
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

    def cluster_settings(self, context: AddonContext) -> Mapping[str, object]:
        """The Karpenter check's NodePool (the first one the stand-in serves)."""
        pools = [g.nodepool for g in self.config.groups if g.nodepool is not None]
        return {"karpenter-nodepool": pools[0]} if pools else {}

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


def _try_create(context: AddonContext, path: str, body: dict[str, Any]) -> bool:
    try:
        context.api.create(path, body)
    except ApiError as error:
        return error.status == 409
    return True


def _established(context: AddonContext, name: str) -> bool:
    try:
        crd = context.api.get(f"{_CRD_PATH}/{name}")
    except ApiError:
        return False
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
