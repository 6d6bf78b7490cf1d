"""The seam through which per-cluster extras (add-ons) join a sandbox.

An add-on is any object with the three methods of :class:`SandboxAddon`. If it also has ``prepare``
(:class:`PreparedAddon`), that runs first, once per sandbox and before any deadline starts: it builds or
fetches what ``start`` needs, and ``kibertas-async sandbox build`` calls it too, so CI can build
everything up front. The sandbox then calls ``start``
once per cluster after that cluster's API server is ready, runs the processes it returns exactly like
its own (own process group, recorded in the state file, stopped by ``down``, killed with a test
session), then calls ``wait_ready``. On ``down`` it stops those processes, then calls ``stop``.
kwok, which gives every cluster its nodes, is the first add-on.
"""

from __future__ import annotations

import functools
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kibertas_async.sandbox.api import ApiError, SandboxApi
from kibertas_async.sandbox.build import SandboxBinaries
from kibertas_async.sandbox.processes import ProcessSpec

__all__ = [
    "CRD_PATH",
    "AddonContext",
    "PreparedAddon",
    "SandboxAddon",
    "answers_http_ok",
    "crd_established",
    "create_once",
    "created_when_served",
    "get_or_none",
    "install_crds",
    "log_tail",
    "wait_until",
]

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
POLL_INTERVAL = 0.2
"""How often :func:`wait_until` looks again."""


@dataclass(frozen=True)
class AddonContext:
    """What an add-on gets to know about the one cluster it is started for."""

    cluster_name: str
    api: SandboxApi
    """Admin client of this cluster's API server."""
    kubeconfig: Path
    """A kubeconfig for this cluster alone, admin credentials, for processes the add-on runs."""
    work_dir: Path
    """Private directory of this add-on on this cluster (config files, data, logs); removed by ``down``."""
    binaries: SandboxBinaries
    kubernetes_version: str
    allocate_port: Callable[[], int]
    """Returns a free TCP port on 127.0.0.1."""


class SandboxAddon(Protocol):
    """Something the sandbox runs beside each cluster (a controller, a stand-in service, ...)."""

    @property
    def name(self) -> str:
        """Short unique name, used for the work directory and process names."""
        ...

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """Prepare the add-on for ``context``'s cluster; return the processes the sandbox must run."""
        ...

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Create the add-on's Kubernetes objects if any, and return once it works; raise if it does not.

        :raises SandboxError: when it is not working within ``timeout`` seconds.
        """
        ...

    def stop(self, context: AddonContext) -> None:
        """Release anything that is not one of the returned processes (those are already stopped)."""
        ...


@runtime_checkable
class PreparedAddon(Protocol):
    """An add-on that must build or fetch something (a Go binary, CRD files) before it can start."""

    def prepare(self, progress: Callable[[str], None]) -> None:
        """Build or fetch what :meth:`SandboxAddon.start` needs; instant when it is already there.

        Called by ``kibertas-async sandbox build`` and at the beginning of every sandbox start, before
        the readiness deadline begins. Report long steps through ``progress`` (one line per call).
        """
        ...


def prepare_addons(addons: Sequence[SandboxAddon], progress: Callable[[str], None]) -> None:
    """Run ``prepare`` of every add-on that has one, in order."""
    for addon in addons:
        if isinstance(addon, PreparedAddon):
            addon.prepare(progress)


# --- helpers for add-ons' start-up ----------------------------------------------------------------------


def create_once(api: SandboxApi, path: str, manifest: dict[str, Any], cluster: str) -> None:
    """POST ``manifest`` to ``path`` unless it is there already (a restarted sandbox reuses its etcd data).

    :raises SandboxError: for any other refusal, naming ``cluster`` and the object.
    """
    from kibertas_async.sandbox.errors import SandboxError

    try:
        api.create(path, manifest)
    except ApiError as error:
        if error.status != 409:
            raise SandboxError(f"{cluster}: could not create {manifest['metadata']['name']}: {error}") from error


def get_or_none(api: SandboxApi, path: str) -> dict[str, Any] | None:
    """GET ``path``; ``None`` on any API error (absent, not served yet)."""
    try:
        return api.get(path)
    except ApiError:
        return None


def crd_established(api: SandboxApi, name: str) -> bool:
    """Whether the CustomResourceDefinition ``name`` is Established (its kinds are served)."""
    crd = get_or_none(api, f"{CRD_PATH}/{name}") or {}
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(item.get("type") == "Established" and item.get("status") == "True" for item in conditions)


def wait_until(ready: Callable[[], object], deadline: float, message: str | Callable[[], str]) -> None:
    """Call ``ready`` every :data:`POLL_INTERVAL` until it is true; at ``deadline`` (``time.monotonic()``)
    raise :class:`SandboxError` with ``message`` (a callable is called then, so a log's tail in it is the
    latest)."""
    from kibertas_async.sandbox.errors import SandboxError

    while not ready():
        if time.monotonic() >= deadline:
            raise SandboxError(message if isinstance(message, str) else message())
        time.sleep(POLL_INTERVAL)


def install_crds(context: AddonContext, crds: Sequence[dict[str, Any]], timeout: float) -> None:
    """Create ``crds`` (each unless there already) and wait until every one is Established.

    :raises SandboxError: when one is refused, or not Established within ``timeout`` seconds.
    """
    for crd in crds:
        create_once(context.api, CRD_PATH, crd, context.cluster_name)
    deadline = time.monotonic() + timeout
    for crd in crds:
        name = crd["metadata"]["name"]
        wait_until(
            functools.partial(crd_established, context.api, name),
            deadline,
            f"{context.cluster_name}: CRD {name} not Established after {timeout:.0f}s",
        )


def created_when_served(api: SandboxApi, path: str, manifest: dict[str, Any]) -> bool:
    """POST ``manifest``; whether it is there now (created, or 409). For :func:`wait_until`: the API server
    serves a new CRD's paths a moment after Established, so the first tries may be refused."""
    try:
        api.create(path, manifest)
    except ApiError as error:
        return error.status == 409
    return True


def answers_http_ok(url: str) -> bool:
    """Whether ``url`` (a local health endpoint) answers 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def log_tail(log_file: Path, lines: int = 15) -> str:
    """``last lines of <log>:`` and its last ``lines`` lines, for an add-on's not-ready message."""
    try:
        tail = log_file.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"{log_file} not written"
    return f"last lines of {log_file}:\n" + "\n".join(tail)
