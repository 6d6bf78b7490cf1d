"""The sandbox add-on: per cluster, moto's S3 server, the log bucket, a ``fluentd`` DaemonSet and the
log shipper standing in for it.

``start`` runs ``python -m moto.server`` on a free loopback port and :mod:`kibertas_async_fluent.shipper`;
``wait_ready`` creates the bucket, namespace ``logging`` and the ``fluentd`` DaemonSet (kwok runs its pods
on every node) and waits for both; ``cluster_settings`` points the check at that cluster's S3.

moto and boto3 are the ``sandbox`` extra (``pip install 'kibertas-async-fluent[sandbox]'``), not runtime
dependencies: the check itself needs neither. This module imports neither, so registering the add-on
costs nothing; ``prepare`` and ``start`` refuse with the extra's name when they are missing.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kibertas_async.sandbox.addons import AddonContext
from kibertas_async.sandbox.api import ApiError
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.nodeagent import NOT_ON_THE_AGENT_NODE
from kibertas_async.sandbox.processes import ProcessSpec
from kibertas_async_fluent.shipper import FLUENTD_DAEMONSET

BUCKET = "kubernetes-logs"
LOG_ENV = "test"
REGION = "us-east-1"
FLUENTD_NAMESPACE = "logging"
FLUENTD_LABELS = {"app.kubernetes.io/name": "fluentd", "app.kubernetes.io/instance": "fluentd"}
# moto accepts any credentials; these only have to look like keys (and are never real ones).
ACCESS_KEY_ID = "AKIASANDBOXFLUENT000"
SECRET_ACCESS_KEY = "sandbox-fluent-secret-access-key"
_POLL_INTERVAL = 0.2
# What the add-on's processes import (moto's server and the shipper's boto3), all from the ``sandbox`` extra.
SANDBOX_MODULES = ("moto", "flask", "boto3")
SANDBOX_EXTRA = "kibertas-async-fluent[sandbox]"


def require_sandbox_extra() -> None:
    """Raise :class:`SandboxError` naming the ``sandbox`` extra when a module it provides is missing.

    :raises SandboxError: when moto's server or boto3 cannot be imported by this interpreter.
    """
    missing = [module for module in SANDBOX_MODULES if importlib.util.find_spec(module) is None]
    if missing:
        raise SandboxError(
            f"the fluent sandbox add-on needs {', '.join(missing)} (moto's S3 server and the log shipper), "
            f"which are not installed: pip install '{SANDBOX_EXTRA}'"
        )


def fluentd_daemonset() -> dict[str, Any]:
    """A ``fluentd`` DaemonSet shaped like the fluentd Helm chart's (kwok only marks its pods Running)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": FLUENTD_DAEMONSET, "namespace": FLUENTD_NAMESPACE, "labels": FLUENTD_LABELS},
        "spec": {
            "selector": {"matchLabels": FLUENTD_LABELS},
            "template": {
                "metadata": {"labels": FLUENTD_LABELS},
                "spec": {
                    "tolerations": [{"operator": "Exists"}],
                    "affinity": NOT_ON_THE_AGENT_NODE,
                    "containers": [
                        {
                            "name": "fluentd",
                            "image": "fluent/fluentd-kubernetes-daemonset:v1-debian-s3",
                            "command": ["fluentd", "-c", "/fluentd/etc/fluent.conf"],
                        }
                    ],
                },
            },
        },
    }


class FluentAddon:
    """moto S3 and the log shipper per sandbox cluster, plus its ``fluentd`` DaemonSet and bucket."""

    name = "fluent"

    def __init__(self) -> None:
        self._endpoints: dict[str, str] = {}

    def prepare(self, progress: Callable[[str], None]) -> None:
        """Nothing to build; fail before any cluster starts when the ``sandbox`` extra is not installed."""
        require_sandbox_extra()

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """moto's S3 server and the shipper writing to it."""
        require_sandbox_extra()
        port = context.allocate_port()
        endpoint = f"http://127.0.0.1:{port}"
        self._endpoints[context.cluster_name] = endpoint
        credentials = {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }
        moto = ProcessSpec(
            f"{context.cluster_name}/fluent-s3",
            (sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)),
            context.work_dir / "moto.log",
        )
        shipper = ProcessSpec(
            f"{context.cluster_name}/fluent-shipper",
            (
                sys.executable,
                "-m",
                "kibertas_async_fluent.shipper",
                f"--kubeconfig={context.kubeconfig}",
                f"--cluster-name={context.cluster_name}",
                f"--endpoint-url={endpoint}",
                f"--bucket={BUCKET}",
                f"--env={LOG_ENV}",
            ),
            context.work_dir / "shipper.log",
            env=credentials,
        )
        return [moto, shipper]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Create the bucket (once moto answers) and the fluentd DaemonSet; wait for its pods."""
        deadline = time.monotonic() + timeout
        bucket_url = f"{self._endpoints[context.cluster_name]}/{BUCKET}"
        while not _create_bucket(bucket_url):
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"{context.cluster_name}: moto S3 not answering; see {context.work_dir / 'moto.log'}"
                )
            time.sleep(_POLL_INTERVAL)
        _create(context, "/api/v1/namespaces", {"metadata": {"name": FLUENTD_NAMESPACE}})
        _create(context, f"/apis/apps/v1/namespaces/{FLUENTD_NAMESPACE}/daemonsets", fluentd_daemonset())
        path = f"/apis/apps/v1/namespaces/{FLUENTD_NAMESPACE}/daemonsets/{FLUENTD_DAEMONSET}"
        while not _daemonset_ready(context, path):
            if time.monotonic() > deadline:
                raise SandboxError(
                    f"{context.cluster_name}: DaemonSet {FLUENTD_NAMESPACE}/{FLUENTD_DAEMONSET} not ready"
                )
            time.sleep(_POLL_INTERVAL)

    def stop(self, context: AddonContext) -> None:
        """Nothing to release: moto keeps its buckets in memory, the DaemonSet lives in the cluster's data."""

    def cluster_settings(self, context: AddonContext) -> Mapping[str, object]:
        """Point the ``fluent`` check at this cluster's moto, path-style, with its fake keys."""
        return {
            "aws-endpoint-url": self._endpoints[context.cluster_name],
            "use-path-style": True,
            "aws-region": REGION,
            "aws-access-key-id": ACCESS_KEY_ID,
            "aws-secret-access-key": SECRET_ACCESS_KEY,
            "log-bucket-name": BUCKET,
            "log-env": LOG_ENV,
        }


def _create_bucket(url: str) -> bool:
    """PUT the bucket (moto does not check signatures); 409 means it is already there."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="PUT"), timeout=2.0) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as error:
        return error.code == 409
    except (OSError, urllib.error.URLError):
        return False


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
