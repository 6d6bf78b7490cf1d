"""The sandbox add-on: cert-manager's real CRDs and controller, the ``selfsigned-issuer`` ClusterIssuer.

The CRDs are cert-manager's own files (``deploy/crds/*.yaml`` of its Go module, plain YAML since
v1.19), fetched once with ``go mod download`` into the sandbox's shared module cache. The controller is
cert-manager's own ``cmd/controller`` at v1.11.5, the newest release whose controller still builds from
the Go module proxy (later ones are a nested module with a relative ``replace``), built once into the
cache with :func:`~kibertas_async.sandbox.gobuild.go_command`. v1.11.5 only knows the fields it knows;
the v1.19 CRDs are a superset of the same ``cert-manager.io/v1`` API, so it works on them.

Beside it runs :mod:`kibertas_async_cert_manager.sandbox.issuer`, dormant until a test sets a fault:
a real cert-manager cannot be told to misissue, so tests pause the real controller (SIGSTOP) and let
the stand-in issue wrong certificates. With ``$KIBERTAS_ASYNC_CERT_MANAGER_CONTROLLER=stand-in`` the
stand-in is the only controller (no Go build needed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kibertas_async.sandbox.addons import AddonContext
from kibertas_async.sandbox.api import ApiError, SandboxApi
from kibertas_async.sandbox.build import cache_root
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.gobuild import go_command
from kibertas_async.sandbox.processes import ProcessSpec
from kibertas_async_cert_manager.resources import CLUSTER_ISSUERS, is_ready

CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager"
CERT_MANAGER_VERSION = "v1.19.1"
"""Whose CRDs the sandbox serves: the first line whose ``deploy/crds`` are plain YAML (no Helm templates)."""
CONTROLLER_VERSION = "v1.11.5"
"""Whose controller the sandbox runs: the newest one that builds from the Go module proxy."""
CONTROLLER_ENV = "KIBERTAS_ASYNC_CERT_MANAGER_CONTROLLER"


def use_real_controller() -> bool:
    """Whether the sandbox runs cert-manager's real v1.11.5 controller (opt-in) beside the stand-in.

    Opt-in, not the default: v1.11.5's self-signed issuer reads the CertificateRequest's private key
    from its informer cache and now and then fails a fresh certificate with "CSR not signed by referenced
    private key" (seen in about one sandbox run in ten), and cert-manager then waits an hour before it
    retries. The check is right to report that as NG on a real cluster, but it makes a test sandbox flaky.
    """
    return os.environ.get(CONTROLLER_ENV, "stand-in") == "cert-manager"


"""``cert-manager`` (default): the real controller, stand-in dormant; ``stand-in``: the stand-in alone."""
CONTROLLER_PROCESS = "cert-manager-controller"
ISSUER_PROCESS = "cert-manager-issuer"

CLUSTER_RESOURCE_NAMESPACE = "cert-manager"
"""Where ClusterIssuers' Secrets live (cert-manager's ``--cluster-resource-namespace``) and the fault switch."""
SELF_SIGNED_CLUSTER_ISSUER = "selfsigned-issuer"

_CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
_POLL_INTERVAL = 0.2
_MINIMUM_READY_TIMEOUT = 60.0


def crd_directory(version: str = CERT_MANAGER_VERSION) -> Path:
    """``deploy/crds`` of cert-manager's module at ``version``, downloaded into the shared cache if needed.

    :raises SandboxError: when ``go`` is missing or the download fails.
    """
    module_cache = cache_root() / "go" / "mod"
    directory = module_cache / f"{CERT_MANAGER_MODULE}@{version}" / "deploy" / "crds"
    if directory.is_dir():
        return directory
    env = {
        **os.environ,
        "GOMODCACHE": str(module_cache),
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "GOWORK": "off",
    }
    go = shutil.which("go") or "/usr/local/go/bin/go"
    module_cache.mkdir(parents=True, exist_ok=True)
    try:
        # Run outside any module: `go mod download module@version` then only fills the module cache.
        completed = subprocess.run(
            [go, "mod", "download", "-json", f"{CERT_MANAGER_MODULE}@{version}"],
            env=env,
            cwd=module_cache,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SandboxError(f"cannot download {CERT_MANAGER_MODULE}@{version} for its CRDs: {error}") from None
    if completed.returncode != 0:
        raise SandboxError(f"go mod download {CERT_MANAGER_MODULE}@{version} failed: {completed.stderr.strip()[-500:]}")
    return Path(json.loads(completed.stdout)["Dir"]) / "deploy" / "crds"


def build_controller(progress: Callable[[str], None] | None = None) -> Path:
    """cert-manager's controller binary, built from the module proxy into the shared cache if missing.

    Instant once built; about 12 minutes cold on 2 cores. ``python -m kibertas_async_cert_manager.sandbox``
    runs it (and fetches the CRDs) ahead of time, e.g. in CI before the tests.
    """
    return go_command(
        CONTROLLER_PROCESS,
        CERT_MANAGER_MODULE,
        CONTROLLER_VERSION,
        f"{CERT_MANAGER_MODULE}/cmd/controller",
        progress=progress,
    )


def load_crds(version: str = CERT_MANAGER_VERSION) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition cert-manager ships at ``version`` (cert-manager.io and acme)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents: list[dict[str, Any]] = []
    for path in sorted(crd_directory(version).glob("*.yaml")):
        with path.open(encoding="utf-8") as stream:
            documents += [
                doc
                for doc in yaml.load_all(stream, Loader=loader)
                if doc and doc.get("kind") == "CustomResourceDefinition"
            ]
    if not documents:
        raise SandboxError(f"{CERT_MANAGER_MODULE}@{version} has no CRDs in deploy/crds")
    return documents


class CertManagerAddon:
    """Per cluster: cert-manager's CRDs and controller, the stand-in issuer, ``selfsigned-issuer``."""

    name = "cert-manager"

    def __init__(self, version: str = CERT_MANAGER_VERSION) -> None:
        self.version = version
        self._crd_names: list[str] = []

    def prepare(self, progress: Callable[[str], None]) -> None:
        """Build the controller (unless only the stand-in runs) and fetch the CRDs: the first time only,
        before any sandbox start-up deadline runs."""
        if use_real_controller():
            build_controller(progress)
        crd_directory(self.version)

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """Install the CRDs and the namespace; return the controller's and the stand-in's processes."""
        crds = load_crds(self.version)
        self._crd_names = [crd["metadata"]["name"] for crd in crds]
        for crd in crds:
            _create(context.api, _CRD_PATH, crd, context.cluster_name)
        namespace = {"metadata": {"name": CLUSTER_RESOURCE_NAMESPACE}}
        _create(context.api, "/api/v1/namespaces", namespace, context.cluster_name)
        real = use_real_controller()
        issuer_argv = (
            sys.executable,
            "-m",
            "kibertas_async_cert_manager.sandbox.issuer",
            f"--kubeconfig={context.kubeconfig}",
            f"--cluster-resource-namespace={CLUSTER_RESOURCE_NAMESPACE}",
            *(("--only-with-fault",) if real else ()),
        )
        issuer = ProcessSpec(f"{context.cluster_name}/{ISSUER_PROCESS}", issuer_argv, context.work_dir / "issuer.log")
        if not real:
            return [issuer]
        controller_argv = (
            str(build_controller()),
            f"--kubeconfig={context.kubeconfig}",
            "--leader-elect=false",
            f"--cluster-resource-namespace={CLUSTER_RESOURCE_NAMESPACE}",
            # Its default is 0.0.0.0:9402: the sandbox listens on loopback only, on ports of its own.
            f"--metrics-listen-address=127.0.0.1:{context.allocate_port()}",
        )
        log_file = context.work_dir / "controller.log"
        return [ProcessSpec(f"{context.cluster_name}/{CONTROLLER_PROCESS}", controller_argv, log_file), issuer]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Wait for the CRDs to be served, create ``selfsigned-issuer`` and wait until the issuer marks it Ready."""
        # The sandbox's deadline is shared by every step since its start: a cold controller build in
        # :meth:`start` may have used it all up, so the controller still gets a short time of its own.
        timeout = max(timeout, _MINIMUM_READY_TIMEOUT)
        deadline = time.monotonic() + timeout
        for name in self._crd_names:
            _poll(
                lambda name=name: _established(context.api, name),
                deadline,
                f"{context.cluster_name}: CRD {name} not Established after {timeout:.0f}s",
            )
        path = CLUSTER_ISSUERS.path()
        manifest = {
            "apiVersion": CLUSTER_ISSUERS.api_version,
            "kind": CLUSTER_ISSUERS.kind,
            "metadata": {"name": SELF_SIGNED_CLUSTER_ISSUER},
            "spec": {"selfSigned": {}},
        }
        _create(context.api, path, manifest, context.cluster_name)
        _poll(
            lambda: is_ready(_get(context.api, f"{path}/{SELF_SIGNED_CLUSTER_ISSUER}")),
            deadline,
            f"{context.cluster_name}: ClusterIssuer {SELF_SIGNED_CLUSTER_ISSUER} not Ready after {timeout:.0f}s; "
            f"see the logs in {context.work_dir}",
        )

    def stop(self, context: AddonContext) -> None:
        """Nothing to release: the CRDs and objects live in the cluster's data, which ``down`` removes."""

    def cluster_settings(self, context: AddonContext) -> Mapping[str, object]:
        """The check's ClusterIssuer on this sandbox cluster."""
        return {"cert-manager-cluster-issuer": SELF_SIGNED_CLUSTER_ISSUER}


def _create(api: SandboxApi, path: str, manifest: dict[str, Any], cluster: str) -> None:
    try:
        api.create(path, manifest)
    except ApiError as error:
        if error.status != 409:  # already there: a restarted sandbox reuses its etcd data
            raise SandboxError(f"{cluster}: could not create {manifest['metadata']['name']}: {error}") from error


def _get(api: SandboxApi, path: str) -> dict[str, Any] | None:
    try:
        return api.get(path)
    except ApiError:
        return None


def _established(api: SandboxApi, name: str) -> bool:
    crd = _get(api, f"{_CRD_PATH}/{name}") or {}
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(item.get("type") == "Established" and item.get("status") == "True" for item in conditions)


def _poll(ready: Any, deadline: float, message: str) -> None:
    while not ready():
        if time.monotonic() >= deadline:
            raise SandboxError(message)
        time.sleep(_POLL_INTERVAL)
