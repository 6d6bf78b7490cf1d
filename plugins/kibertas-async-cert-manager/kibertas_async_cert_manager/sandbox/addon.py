"""The sandbox add-on: cert-manager's real CRDs and controller, the ``selfsigned-issuer`` ClusterIssuer.

The CRDs are cert-manager's own files (``deploy/crds/*.yaml`` of its Go module at
:data:`CERT_MANAGER_VERSION`), fetched once with ``go mod download`` into the sandbox's shared module
cache. The controller is cert-manager's own controllers at the same version. Since v1.12 its
``cmd/controller`` is a nested module with a relative ``replace``, which the Go module proxy does not
serve, so :data:`CONTROLLER_SOURCE` is a ``main`` of our own (about 140 lines): it builds cert-manager's
``controller.ContextFactory`` as ``cmd/controller/app`` does and runs every controller in
``controller.Known()``; blank imports register the Certificate, CertificateRequest (approver, CA,
self-signed) and Issuer/ClusterIssuer controllers. No leader election, webhook, cainjector, ACME,
Vault, Venafi or shims. It is built once into the cache with
:func:`~kibertas_async.sandbox.gobuild.go_command` (keyed by the version and a digest of our main).

Beside it runs :mod:`kibertas_async_cert_manager.sandbox.issuer`, dormant until a test sets a fault:
a real cert-manager cannot be told to misissue, so tests pause the real controller (SIGSTOP) and let
the stand-in issue wrong certificates. With ``$KIBERTAS_ASYNC_CERT_MANAGER_CONTROLLER=stand-in`` the
stand-in is the only controller (no Go build needed).

**The old flake** (v1.11.5's controller on v1.19.1's CRDs, about one sandbox run in ten: a fresh
Certificate failed with ``CSR not signed by referenced private key``, then an hour of back-off). The
check is not its cause: every run makes a namespace of its own (``cert-manager-test-<date>-<random>``),
so no Secret name is ever reused across runs, and the check never changes a Certificate after creating
it. The message is cert-manager's self-signed CertificateRequest issuer finding that the private key in
the Secret named by the request (the keymanager's temporary "next private key" Secret) is not the key
the CSR was made with: the key was replaced while the request was in flight, a race of cert-manager's
keymanager with its own informer caches. In v1.11.5 a reconcile on a stale cache creates a second key
Secret, and on seeing two the keymanager deletes both, the one the request names included (a TODO in
its code), then recreates that name with a new key. v1.21.0 fixed both halves: PR #8579 (the keymanager
reads the latest Certificate from the API before creating a key Secret, and reuses one that exists)
and PR #8577 (it keeps the Secret ``status.nextPrivateKeySecretName`` names when cleaning up
duplicates). Upstream issue cert-manager/cert-manager#6331 tracks what is left (the issuing controller
acting on such a failed request before it sees the request is stale; fixed on master by PR #9116,
which is in no release yet). The CRDs are not needed to explain it. Against v1.21.2 here, 60 runs of
``kibertas-async run cert-manager`` on both clusters (120 checks, 240 fresh Certificates): all passed,
and no controller log line says a key did not match.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kibertas_async.sandbox.addons import CRD_PATH, AddonContext, crd_established, create_once, get_or_none, wait_until
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.gobuild import go_command, module_directory
from kibertas_async.sandbox.processes import ProcessSpec
from kibertas_async_cert_manager.resources import CLUSTER_ISSUERS, is_ready

CERT_MANAGER_MODULE = "github.com/cert-manager/cert-manager"
CERT_MANAGER_VERSION = "v1.21.2"
"""Whose CRDs the sandbox serves and whose controllers it runs (through our own ``main``)."""
CONTROLLER_SOURCE = "controller/main.go"
"""Our ``main`` for cert-manager's controllers, package data beside this module."""
CONTROLLER_VERSION = CERT_MANAGER_VERSION
"""The controller is the same release as the CRDs (it was v1.11.5 on v1.19.1's CRDs until our own main)."""
CONTROLLER_ENV = "KIBERTAS_ASYNC_CERT_MANAGER_CONTROLLER"
"""``cert-manager`` (default): the real controller, stand-in dormant; ``stand-in``: the stand-in alone."""
_CONTROLLER_CHOICES = ("cert-manager", "stand-in")


def use_real_controller() -> bool:
    """Whether the sandbox runs cert-manager's real controller (the default) beside the dormant stand-in.

    ``$KIBERTAS_ASYNC_CERT_MANAGER_CONTROLLER=stand-in`` is for machines without Go: the stand-in alone.
    :raises SandboxError: for any other value, rather than silently picking one.
    """
    choice = os.environ.get(CONTROLLER_ENV, "").strip() or "cert-manager"
    if choice not in _CONTROLLER_CHOICES:
        raise SandboxError(f"${CONTROLLER_ENV}={choice!r}: use one of {', '.join(_CONTROLLER_CHOICES)}")
    return choice == "cert-manager"


CONTROLLER_PROCESS = "cert-manager-controller"
ISSUER_PROCESS = "cert-manager-issuer"

CLUSTER_RESOURCE_NAMESPACE = "cert-manager"
"""Where ClusterIssuers' Secrets live (cert-manager's ``--cluster-resource-namespace``) and the fault switch."""
SELF_SIGNED_CLUSTER_ISSUER = "selfsigned-issuer"

_MINIMUM_READY_TIMEOUT = 60.0


def crd_directory(version: str = CERT_MANAGER_VERSION) -> Path:
    """``deploy/crds`` of cert-manager's module at ``version``, downloaded into the shared cache if needed.

    :raises SandboxError: when ``go`` is missing or the download fails.
    """
    return module_directory(CERT_MANAGER_MODULE, version) / "deploy" / "crds"


def build_controller(progress: Callable[[str], None] | None = None) -> Path:
    """cert-manager's controllers at :data:`CERT_MANAGER_VERSION` under our own ``main``, built once.

    The ``main`` is :data:`CONTROLLER_SOURCE` (package data); the cache key holds the version and a
    digest of it. Instant once built; 3 min 24 s cold on 2 busy cores, with the module and build caches
    warm from the sandbox's Kubernetes build. ``kibertas-async sandbox build`` (and
    ``python -m kibertas_async_cert_manager.sandbox``) run it ahead of time, e.g. in CI before the tests.
    """
    main_go = (Path(__file__).parent / CONTROLLER_SOURCE).read_text(encoding="utf-8")
    return go_command(
        CONTROLLER_PROCESS,
        CERT_MANAGER_MODULE,
        CERT_MANAGER_VERSION,
        ".",
        progress=progress,
        sources={"main.go": main_go},
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
            create_once(context.api, CRD_PATH, crd, context.cluster_name)
        namespace = {"metadata": {"name": CLUSTER_RESOURCE_NAMESPACE}}
        create_once(context.api, "/api/v1/namespaces", namespace, context.cluster_name)
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
            f"--cluster-resource-namespace={CLUSTER_RESOURCE_NAMESPACE}",
            "-v=2",  # the Helm chart's log level: issuance steps, not every cache event
            # cert-manager's own default is 0.0.0.0:9402: the sandbox listens on loopback, on ports of its own.
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
            wait_until(
                functools.partial(crd_established, context.api, name),
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
        create_once(context.api, path, manifest, context.cluster_name)
        wait_until(
            lambda: is_ready(get_or_none(context.api, f"{path}/{SELF_SIGNED_CLUSTER_ISSUER}")),
            deadline,
            f"{context.cluster_name}: ClusterIssuer {SELF_SIGNED_CLUSTER_ISSUER} not Ready after {timeout:.0f}s; "
            f"see the logs in {context.work_dir}",
        )

    def stop(self, context: AddonContext) -> None:
        """Nothing to release: the CRDs and objects live in the cluster's data, which ``down`` removes."""

    def cluster_settings(self, context: AddonContext) -> Mapping[str, object]:
        """The check's ClusterIssuer on this sandbox cluster."""
        return {"cert-manager-cluster-issuer": SELF_SIGNED_CLUSTER_ISSUER}
