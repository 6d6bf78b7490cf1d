"""The sandbox add-on: a Datadog query API stand-in per cluster, and the agent DaemonSet it watches.

``start`` runs :mod:`kibertas_async_datadog.standin` on a free loopback port; ``wait_ready`` creates the
``datadog-agent`` DaemonSet in namespace ``datadog`` (kwok runs its pods on every node) and waits until
its pods are Ready and the stand-in answers; ``cluster_settings`` points the check at the stand-in with
that cluster's (fake) keys. Tests break the agent by changing the DaemonSet, never the stand-in.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from kibertas_async.sandbox.addons import AddonContext
from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.nodeagent import NOT_ON_THE_AGENT_NODE
from kibertas_async.sandbox.processes import ProcessSpec
from kibertas_async_datadog.standin import AGENT_NAME, API_KEY_ENV, APP_KEY_ENV

AGENT_NAMESPACE = "datadog"
AGENT_LABELS = {"app.kubernetes.io/name": AGENT_NAME, "app.kubernetes.io/instance": "datadog"}
_POLL_INTERVAL = 0.2


def api_key_for(cluster_name: str) -> str:
    """The fake API key the stand-in of ``cluster_name`` accepts."""
    return f"sandbox-dd-api-key-{cluster_name}"


def app_key_for(cluster_name: str) -> str:
    """The fake application key the stand-in of ``cluster_name`` accepts."""
    return f"sandbox-dd-app-key-{cluster_name}"


def agent_daemonset() -> dict[str, Any]:
    """A ``datadog-agent`` DaemonSet shaped like the Helm chart's (kwok only marks its pods Running)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": AGENT_NAME, "namespace": AGENT_NAMESPACE, "labels": AGENT_LABELS},
        "spec": {
            "selector": {"matchLabels": AGENT_LABELS},
            "template": {
                "metadata": {"labels": AGENT_LABELS},
                "spec": {
                    "tolerations": [{"operator": "Exists"}],
                    "affinity": NOT_ON_THE_AGENT_NODE,
                    "containers": [
                        {
                            "name": "agent",
                            "image": "gcr.io/datadoghq/agent:7",
                            "env": [{"name": "DD_KUBERNETES_KUBELET_NODENAME", "value": "node"}],
                        }
                    ],
                },
            },
        },
    }


class DatadogStandinAddon:
    """One Datadog stand-in per sandbox cluster, plus that cluster's ``datadog-agent`` DaemonSet."""

    name = "datadog"

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """The stand-in process for this cluster, on a free loopback port."""
        port = context.allocate_port()
        self._urls[context.cluster_name] = f"http://127.0.0.1:{port}"
        argv = (
            sys.executable,
            "-m",
            "kibertas_async_datadog.standin",
            f"--port={port}",
            f"--cluster-name={context.cluster_name}",
            f"--kubeconfig={context.kubeconfig}",
        )
        env = {API_KEY_ENV: api_key_for(context.cluster_name), APP_KEY_ENV: app_key_for(context.cluster_name)}
        return [ProcessSpec(f"{context.cluster_name}/datadog-standin", argv, context.work_dir / "standin.log", env=env)]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Create the agent DaemonSet, then wait for its pods and for the stand-in to answer."""
        deadline = time.monotonic() + timeout
        _create(context, "/api/v1/namespaces", {"metadata": {"name": AGENT_NAMESPACE}})
        _create(context, f"/apis/apps/v1/namespaces/{AGENT_NAMESPACE}/daemonsets", agent_daemonset())
        path = f"/apis/apps/v1/namespaces/{AGENT_NAMESPACE}/daemonsets/{AGENT_NAME}"
        while not _daemonset_ready(context, path):
            if time.monotonic() > deadline:
                raise SandboxError(f"{context.cluster_name}: DaemonSet {AGENT_NAMESPACE}/{AGENT_NAME} not ready")
            time.sleep(_POLL_INTERVAL)
        url = self._urls[context.cluster_name] + "/healthz"
        while not _answers(url):
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"{context.cluster_name}: Datadog stand-in not answering at {url}; "
                    f"see {context.work_dir / 'standin.log'}"
                )
            time.sleep(_POLL_INTERVAL)

    def stop(self, context: AddonContext) -> None:
        """Nothing to release: the DaemonSet lives in the cluster's data, which ``down`` removes."""

    def cluster_settings(self, context: AddonContext) -> Mapping[str, object]:
        """Point ``datadog-agent`` at this cluster's stand-in, with the keys it accepts."""
        return {
            "datadog-api-url": self._urls[context.cluster_name],
            "datadog-api-key": api_key_for(context.cluster_name),
            "datadog-app-key": app_key_for(context.cluster_name),
        }


def _create(context: AddonContext, path: str, body: dict[str, Any]) -> None:
    try:
        context.api.create(path, body)
    except ApiError as error:
        if error.status != 409:  # already there: a restarted sandbox reuses its etcd data
            raise SandboxError(f"{context.cluster_name}: could not create {path}: {error}") from error


def _daemonset_ready(context: AddonContext, path: str) -> bool:
    try:
        status = context.api.get(path).get("status", {})
    except ApiError:
        return False
    desired = int(status.get("desiredNumberScheduled", 0))
    return desired > 0 and int(status.get("numberReady", 0)) == desired


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
