"""What the node-agent tests share: the image, the PostSync overlay as kubectl renders it, Job waits.

The image is ``localhost/kibertas-async:dev`` built by ``scripts/image --check``. Where podman cannot run,
the tests skip with the reason, and fail with it when ``$CI`` is true (never a silent skip in CI).
"""

from __future__ import annotations

import atexit
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from kibertas_async.kube import KubeObject
from kibertas_async.kube.resources import Resource
from kibertas_async.sandbox.addons import SandboxAddon
from kibertas_async.sandbox.build import binaries_for
from kibertas_async.sandbox.nodeagent import NODE_AGENT_LABEL, NODE_AGENT_TAINT
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster, SandboxConfig
from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION
from kibertas_async.testing import ci_requires_sandbox

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/kibertas-async:dev"
JOBS = Resource("batch", "v1", "jobs", "Job")
POSTSYNC_OVERLAY = REPO / "deploy" / "overlays" / "argocd-postsync"


def unavailable(message: str) -> None:
    """Skip with ``message``; fail with it when ``$CI`` is true."""
    if ci_requires_sandbox():
        pytest.fail(f"CI is set: {message}", pytrace=False)
    pytest.skip(message)


def require_agent_prerequisites() -> None:
    """The sandbox binaries, a podman that runs containers, and the image (built now if out of date)."""
    from kibertas_async.sandbox.nodeagent import podman_problem

    missing = binaries_for(DEFAULT_KUBERNETES_VERSION).missing()
    if missing:
        unavailable(
            f"sandbox binaries missing ({', '.join(p.name for p in missing)}); run `kibertas-async sandbox build`"
        )
    if (problem := podman_problem()) is not None:
        unavailable(f"podman cannot run containers here: {problem}")
    built = subprocess.run([str(REPO / "scripts" / "image"), "--check"], capture_output=True, text=True, timeout=900)
    if built.returncode != 0:
        unavailable(f"`scripts/image --check` failed (exit {built.returncode}):\n{built.stderr[-3000:]}")


@contextmanager
def sandbox_with_agent(state_dir: Path, cluster: str, addons: Sequence[SandboxAddon]) -> Iterator[Sandbox]:
    """A one-cluster sandbox with ``addons`` (the node agent among them), stopped afterwards; the
    prerequisites (binaries, podman, the image) checked first."""
    with sandbox_with_agents(state_dir, (cluster,), addons) as started:
        yield started


def render_postsync(sandbox: Sandbox, cluster: SandboxCluster) -> list[dict[str, Any]]:
    """``deploy/overlays/argocd-postsync`` rendered by the sandbox's kubectl (``kubectl kustomize``)."""
    assert POSTSYNC_OVERLAY.is_dir(), f"{POSTSYNC_OVERLAY} is part of the repository; without it nothing is proven"
    kubectl = [str(sandbox.binaries.kubectl), f"--kubeconfig={cluster.kubeconfig}"]
    rendered = subprocess.run(
        [*kubectl, "kustomize", str(POSTSYNC_OVERLAY)], capture_output=True, text=True, check=True
    )
    return list(yaml.safe_load_all(rendered.stdout))


def the_one(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single document of ``kind``."""
    [found] = [document for document in documents if document["kind"] == kind]
    return found


def on_the_agent_node(pod_spec: dict[str, Any]) -> None:
    """Send a pod template to the agent's node: its label as nodeSelector, its taint tolerated."""
    pod_spec["nodeSelector"] = {NODE_AGENT_LABEL: "podman"}
    pod_spec["tolerations"] = [NODE_AGENT_TAINT]


def job_finished(job: KubeObject | None) -> bool:
    """A Job with a true Complete or Failed condition."""
    conditions = (job or {}).get("status", {}).get("conditions") or []
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


def job_conditions(job: KubeObject) -> dict[str, str]:
    """The Job's conditions by type: ``{"Complete": "True", ...}``."""
    return {c["type"]: c["status"] for c in job.get("status", {}).get("conditions") or []}


def json_events(log: str) -> list[dict[str, Any]]:
    """The JSON event lines of a container's output."""
    import json

    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


SHARDED_OVERLAY = REPO / "deploy" / "overlays" / "sharded"


@contextmanager
def sandbox_with_agents(state_dir: Path, clusters: Sequence[str], addons: Sequence[SandboxAddon]) -> Iterator[Sandbox]:
    """:func:`sandbox_with_agent` for several clusters: each gets every one of ``addons`` (the node agent
    among them), all stopped afterwards; the prerequisites checked first."""
    require_agent_prerequisites()
    config = SandboxConfig(
        cluster_names=tuple(clusters), state_dir=state_dir, kubeconfig=state_dir / "kubeconfig", addons=tuple(addons)
    )
    started = Sandbox.start(config, die_with_parent=True)
    atexit.register(started.down)
    try:
        yield started
    finally:
        started.down()
        atexit.unregister(started.down)


def render_sharded(sandbox: Sandbox, cluster: SandboxCluster) -> list[dict[str, Any]]:
    """``deploy/overlays/sharded`` rendered by the sandbox's kubectl (``kubectl kustomize``)."""
    assert SHARDED_OVERLAY.is_dir(), f"{SHARDED_OVERLAY} is part of the repository; without it nothing is proven"
    kubectl = [str(sandbox.binaries.kubectl), f"--kubeconfig={cluster.kubeconfig}"]
    rendered = subprocess.run([*kubectl, "kustomize", str(SHARDED_OVERLAY)], capture_output=True, text=True, check=True)
    return [document for document in yaml.safe_load_all(rendered.stdout) if document]
