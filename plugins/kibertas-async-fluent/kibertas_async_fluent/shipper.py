"""A stand-in for fluentd in the sandbox: ships pods' log lines to S3 in fluentd's S3 output layout.

Every ``--flush-interval`` seconds (fluentd's buffer flush) it:

1. finds the nodes where a pod of a DaemonSet named ``fluentd`` (any namespace) is Running: only those
   nodes have a log shipper, exactly as with a real DaemonSet;
2. takes every Running pod on those nodes and the lines its containers declare they print
   (:mod:`kibertas_async_fluent.declared`; kwok runs nothing, so nothing is really printed);
3. writes, per namespace, one gzip object of JSON lines (fluentd's ``record`` with the ``kubernetes``
   metadata of the kubernetes_metadata filter) to
   ``<path template>/<YYYYmmddHHMMSS>_<index>.gz`` in the bucket, where the path template is the check's
   default, ``fluentd/{env}/{namespace}/dt={date:%Y%m%d}``.

Stop fluentd (delete its DaemonSet, or give it a nodeSelector no node has) and nothing is shipped any
more. Run it with ``python -m kibertas_async_fluent.shipper --kubeconfig PATH --endpoint-url URL
--bucket NAME``; AWS credentials come from the environment.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kibertas_async_fluent.check import DEFAULT_LOG_PATH, render_log_path
from kibertas_async_fluent.declared import declared_lines

if TYPE_CHECKING:
    from kibertas_async import KubeClient, KubeObject

FLUENTD_DAEMONSET = "fluentd"


def shipper_nodes(pods: Iterable[KubeObject]) -> set[str]:
    """Nodes with a Running, not terminating pod owned by a DaemonSet named ``fluentd``."""
    return {
        pod["spec"]["nodeName"]
        for pod in pods
        if pod["spec"].get("nodeName")
        and not pod["metadata"].get("deletionTimestamp")
        and any(
            ref.get("kind") == "DaemonSet" and ref.get("name") == FLUENTD_DAEMONSET
            for ref in pod["metadata"].get("ownerReferences") or []
        )
    }


def records_by_namespace(pods: Iterable[KubeObject], nodes: set[str], now: datetime) -> dict[str, list[dict[str, Any]]]:
    """fluentd records for the declared lines of every pod on ``nodes``, grouped by namespace."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pod in pods:
        node = pod["spec"].get("nodeName")
        if node not in nodes or pod["metadata"].get("deletionTimestamp"):
            continue
        for container in pod["spec"].get("containers", []):
            # The kubelet gives every container HOSTNAME = the pod's name.
            with_hostname = {
                **container,
                "env": [{"name": "HOSTNAME", "value": pod["metadata"]["name"]}, *(container.get("env") or [])],
            }
            for line in declared_lines(with_hostname):
                grouped[pod["metadata"]["namespace"]].append(
                    {
                        "log": line + "\n",
                        "stream": "stdout",
                        "time": now.isoformat().replace("+00:00", "Z"),
                        "kubernetes": {
                            "namespace_name": pod["metadata"]["namespace"],
                            "pod_name": pod["metadata"]["name"],
                            "container_name": container["name"],
                            "host": node,
                            "labels": pod["metadata"].get("labels", {}),
                        },
                    }
                )
    return dict(grouped)


class Shipper:
    """The flush loop: list pods, write one object per namespace with lines."""

    def __init__(self, kube: KubeClient, s3: Any, bucket: str, env: str, path_template: str) -> None:
        self._kube = kube
        self._s3 = s3
        self._bucket = bucket
        self._env = env
        self._path_template = path_template
        self._index = itertools.count()

    async def flush(self) -> int:
        """Ship what the pods printed since the last flush; return how many objects were written."""
        import anyio

        from kibertas_async import PODS

        pods = (await self._kube.list(PODS, field_selector="status.phase=Running"))["items"]
        now = datetime.now(UTC)
        written = 0
        for namespace, records in records_by_namespace(pods, shipper_nodes(pods), now).items():
            prefix = render_log_path(self._path_template, env=self._env, namespace=namespace, date=now)
            key = f"{prefix}/{now:%Y%m%d%H%M%S}_{next(self._index)}.gz"
            body = gzip.compress("".join(json.dumps(record) + "\n" for record in records).encode())
            await anyio.to_thread.run_sync(
                functools.partial(self._s3.put_object, Bucket=self._bucket, Key=key, Body=body)
            )
            written += 1
        return written


async def ship(args: argparse.Namespace) -> None:
    """Flush every ``args.flush_interval`` seconds until cancelled; a failed flush is logged and retried."""
    import anyio
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    from kibertas_async import ClusterTarget, connect

    kube = await connect(ClusterTarget(name=args.cluster_name, kubeconfig=args.kubeconfig), timeout=30.0)
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url, config=Config(s3={"addressing_style": "path"}))
    shipper = Shipper(kube, s3, args.bucket, args.env, args.path_template)
    print(f"shipping logs of {args.cluster_name} to {args.endpoint_url}/{args.bucket}", flush=True)
    try:
        while True:
            try:
                written = await shipper.flush()
            except Exception as error:  # keep shipping, as fluentd retries its flushes
                print(f"flush failed: {type(error).__name__}: {error}", flush=True)
            else:
                if written:
                    print(f"{datetime.now(UTC):%H:%M:%S} wrote {written} object(s)", flush=True)
            await anyio.sleep(args.flush_interval)
    finally:
        await kube.aclose()


def main(argv: Sequence[str] | None = None) -> None:
    """Command line; see the module documentation."""
    import anyio

    parser = argparse.ArgumentParser(description="Sandbox stand-in for fluentd: pod log lines to S3.")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--cluster-name", required=True)
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--env", default="test")
    parser.add_argument("--path-template", default=DEFAULT_LOG_PATH)
    parser.add_argument("--flush-interval", type=float, default=2.0)
    anyio.run(ship, parser.parse_args(argv))


if __name__ == "__main__":
    main()
