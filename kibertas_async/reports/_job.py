"""``report merge --job NAME``: wait until the sharded run's Indexed Job has finished, and take the run
from it: its uid is the run id (every shard pod gets it from the Job's ``controller-uid`` label) and its
``completions`` the number of shards. Once the Job is finished no shard report is still to come, so
those not there are missing for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio

from kibertas_async.errors import KibertasError
from kibertas_async.kube import ClusterTarget, KubeClient, Resource, connect

JOBS = Resource("batch", "v1", "jobs", "Job")
POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
POLL_INTERVAL = 5.0
"""How often the Job is looked at (one GET: the merge needs ``get`` on Jobs in its namespace only)."""


@dataclass(frozen=True)
class ShardJob:
    """The Indexed Job that ran the shards, as last seen."""

    name: str
    namespace: str
    uid: str
    """The run id of its shards."""
    completions: int
    """How many shards."""
    state: str
    """``Complete``, ``Failed``, or ``running`` when the wait ran out first."""


def default_namespace(environ: Mapping[str, str]) -> str:
    """The Pod's own namespace in a Pod (``POD_NAMESPACE``, else its service account's), else ``default``."""
    if environ.get("POD_NAMESPACE", "").strip():
        return environ["POD_NAMESPACE"].strip()
    try:
        return POD_NAMESPACE_FILE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def _state(job: Mapping[str, object]) -> str:
    status = job.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for condition in conditions if isinstance(conditions, list) else []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return "running"


def _describe(job: Mapping[str, object], name: str, namespace: str) -> ShardJob:
    metadata, spec = job.get("metadata"), job.get("spec")
    assert isinstance(metadata, Mapping) and isinstance(spec, Mapping)
    if spec.get("completionMode") != "Indexed":
        raise KibertasError(f"Job {namespace}/{name} is not an Indexed Job (spec.completionMode: Indexed)")
    return ShardJob(name, namespace, str(metadata["uid"]), int(str(spec.get("completions", 1))), _state(job))


async def wait_for_job(target: ClusterTarget, name: str, namespace: str, *, timeout: float) -> ShardJob:
    """The Job once it is finished, or as it is when ``timeout`` seconds have passed.

    A Job that does not exist yet is waited for too (the merge may be created before it).

    :raises KibertasError: the cluster cannot be reached, the Job never appeared, or it is not Indexed.
    """
    from kibertas_async.events import get_logger

    log = get_logger(job=f"{namespace}/{name}")
    client: KubeClient = await connect(target)
    async with client:
        deadline = anyio.current_time() + timeout
        while True:
            job = await client.get(JOBS, name, namespace)
            seen = None if job is None else _describe(job, name, namespace)
            if seen is not None and seen.state != "running":
                log.info("job.finished", state=seen.state, run_id=seen.uid, shards=seen.completions)
                return seen
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                if seen is None:
                    raise KibertasError(f"Job {namespace}/{name} did not appear within {timeout:g}s")
                log.warning("job.unfinished", reason=f"still running after {timeout:g}s; merging what is there")
                return seen
            await anyio.sleep(min(POLL_INTERVAL, remaining))
