"""How the node agent turns one container of a Pod into podman commands (no I/O here but the rlimits).

The argv carries no secret: environment values are handed to ``podman create`` through its own
environment (``--env NAME`` copies the value from there), so they never show in a process listing.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AGENT_DIR_LABEL = "kibertas-async.io/node-agent-dir"
"""Label on every container the agent creates: its work directory, so ``stop`` finds exactly its own."""
POD_UID_LABEL = "kibertas-async.io/pod-uid"


@dataclass(frozen=True)
class Mount:
    """A host directory bound into the container, or a tmpfs when ``source`` is None (emptyDir)."""

    target: str
    source: Path | None = None
    read_only: bool = False


def container_name(pod_uid: str, container: str) -> str:
    """``<pod-uid>-<container>``: unique per pod, and what the agent stops and removes by."""
    return f"{pod_uid}-{container}"


def ulimit_args() -> list[str]:
    """Explicit rlimits: podman's defaults exceed this machine's hard limits (see scripts/image).

    nofile is the hard limit; nproc the hard limit but not above ``kernel.pid_max`` (runc refused more).
    """
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        pid_max = 32768
    if nofile == resource.RLIM_INFINITY:
        nofile = 1048576
    if nproc == resource.RLIM_INFINITY or nproc > pid_max:
        nproc = pid_max
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def user_arg(pod_spec: Mapping[str, Any], container: Mapping[str, Any]) -> list[str]:
    """``--user UID[:GID]`` from runAsUser/runAsGroup, the container's settings over the pod's."""
    pod_context = pod_spec.get("securityContext") or {}
    own = container.get("securityContext") or {}
    uid = own.get("runAsUser", pod_context.get("runAsUser"))
    gid = own.get("runAsGroup", pod_context.get("runAsGroup"))
    if uid is None and gid is None:
        return []
    if uid is None:
        # podman needs a user with a group; without runAsUser the image's user is not known here.
        uid = 0
    return ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]


def create_argv(
    podman: str,
    name: str,
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    env_names: Sequence[str],
    mounts: Sequence[Mount],
    labels: Mapping[str, str],
) -> list[str]:
    """``podman create`` for ``container`` of ``pod``: host network, explicit rlimits, no pulls.

    Kubernetes' ``command`` replaces the image's ENTRYPOINT and ``args`` its CMD, as a kubelet does.
    """
    spec = pod.get("spec") or {}
    argv = [podman, "create", "--name", name, "--network", "host", "--pull", "never", "--rm=false"]
    argv += ["--log-driver", "k8s-file", *ulimit_args(), *user_arg(spec, container)]
    for key, value in sorted(labels.items()):
        argv += ["--label", f"{key}={value}"]
    if (container.get("securityContext") or {}).get("readOnlyRootFilesystem"):
        argv.append("--read-only")
    if working_dir := container.get("workingDir"):
        argv += ["--workdir", str(working_dir)]
    for env_name in env_names:
        argv += ["--env", env_name]
    for mount in mounts:
        if mount.source is None:
            argv += ["--tmpfs", f"{mount.target}:rw,mode=1777"]
        else:
            argv += ["--volume", f"{mount.source}:{mount.target}:{'ro' if mount.read_only else 'rw'}"]
    command = container.get("command")
    if command is not None:
        argv += ["--entrypoint", json.dumps(list(command))]
    argv.append(str(container["image"]))
    argv += [str(arg) for arg in container.get("args") or []]
    return argv
