"""The sandbox add-on that runs the real Karpenter, with its KWOK cloud provider, beside each cluster.

Karpenter's own module (``sigs.k8s.io/karpenter``) has a cloud provider for kwok: the main package
``sigs.k8s.io/karpenter/kwok`` is Karpenter's controllers (provisioning, registration, initialization,
limits, disruption, termination, garbage collection) over a "cloud" whose instances are Node objects
annotated ``kwok.x-k8s.io/node=fake``, which the kwok add-on's controller already selects and makes
Ready. So everything the ``karpenter`` check watches is Karpenter's doing; only the instances are fake.

Per cluster it installs Karpenter's CRDs as that module ships them for the kwok provider
(``kwok/charts/crds``: NodePool, NodeClaim, NodeOverlay with the provider's validation rules;
``kwok/apis/crds``: KWOKNodeClass), writes an instance-types file shaped like two EKS instance types in
the kwok nodes' zones, starts one Karpenter process (``karpenter`` in ``kibertas-async sandbox status``,
log ``clusters/<name>/addons/karpenter/karpenter.log``) and creates the KWOKNodeClass and the NodePool
``default``. The binary is built once from the Go module proxy (:meth:`KarpenterAddon.prepare`, also run
by ``kibertas-async sandbox build``) into the shared cache.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kibertas_async.sandbox.addons import (
    AddonContext,
    answers_http_ok,
    created_when_served,
    get_or_none,
    install_crds,
    log_tail,
    wait_until,
)
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.gobuild import TextEdit, go_command, go_command_path, patched_module, patched_module_path
from kibertas_async.sandbox.gobuild import module_directory as go_module_directory
from kibertas_async.sandbox.processes import ProcessSpec

KARPENTER_MODULE = "sigs.k8s.io/karpenter"
KARPENTER_VERSION = "v1.13.0"
"""v1.13.0 asks for Go 1.26.4 and builds with the machine's Go 1.26; v1.15 would need Go 1.26.9 or later."""
KARPENTER_PACKAGE = f"{KARPENTER_MODULE}/kwok"
"""The main package: Karpenter's operator with the KWOK cloud provider."""
PROCESS_NAME = "karpenter"
"""The sandbox process (``cluster.processes["karpenter"]``): tests stop and pause it."""
BINARY_NAME = "karpenter-kwok"
NODEPOOL = "default"
NODECLASS = "default"
NODECLASS_GROUP = "karpenter.kwok.sh"
NODECLASS_KIND = "KWOKNodeClass"
NODEPOOL_CPU_LIMIT = "16"
"""The NodePool's ``limits.cpu``: room for eight m5.large nodes, as a real NodePool would bound its spend."""
ZONES = ("ap-northeast-1a", "ap-northeast-1c")
"""The zones of the kwok add-on's own nodes, so Karpenter's nodes look like the same EKS cluster's."""

_CRD_DIRECTORIES = ("kwok/charts/crds", "kwok/apis/crds")
_NODEPOOLS_PATH = "/apis/karpenter.sh/v1/nodepools"
_NODECLASSES_PATH = f"/apis/{NODECLASS_GROUP}/v1alpha1/kwoknodeclasses"
_CRDS_ESTABLISHED_TIMEOUT = 60.0
_MINIMUM_READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class InstanceType:
    """One instance type the KWOK provider may launch: its shape and hourly prices (offerings per zone)."""

    name: str
    cpu: str
    memory: str
    pods: str
    on_demand_price: float
    spot_price: float


INSTANCE_TYPES = (
    InstanceType("m5.large", cpu="2", memory="8Gi", pods="29", on_demand_price=0.124, spot_price=0.048),
    InstanceType("m5.xlarge", cpu="4", memory="16Gi", pods="58", on_demand_price=0.248, spot_price=0.096),
)
"""Two EKS instance types (ap-northeast-1 on-demand prices, spot about 40 % of them). Karpenter picks the
cheapest that fits, so the probe gets m5.large spot nodes; the smallest has 2 CPUs, so ``limits.cpu``
below 2 forbids any new node."""


def instance_types_document(types: Sequence[InstanceType] = INSTANCE_TYPES) -> list[dict[str, Any]]:
    """The KWOK provider's ``--instance-types-file-path`` format: each type with an offering per zone and
    capacity type (the ``Price``/``Available``/``Requirements`` keys are the Go field names it expects)."""
    return [
        {
            "name": spec.name,
            "architecture": "amd64",
            "operatingSystems": ["linux"],
            "resources": {"cpu": spec.cpu, "memory": spec.memory, "pods": spec.pods, "ephemeral-storage": "20Gi"},
            "offerings": [
                {
                    "Price": price,
                    "Available": True,
                    "Requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity_type]},
                        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]},
                    ],
                }
                for zone in ZONES
                for capacity_type, price in (("spot", spec.spot_price), ("on-demand", spec.on_demand_price))
            ],
        }
        for spec in types
    ]


def nodeclass_manifest() -> dict[str, Any]:
    """The KWOKNodeClass the NodePool points at (its CRD defaults its status to Ready)."""
    return {
        "apiVersion": f"{NODECLASS_GROUP}/v1alpha1",
        "kind": NODECLASS_KIND,
        "metadata": {"name": NODECLASS},
        "spec": {},
    }


def nodepool_manifest(name: str = NODEPOOL, cpu_limit: str = NODEPOOL_CPU_LIMIT) -> dict[str, Any]:
    """A NodePool as an EKS cluster would have one: spot or on-demand amd64 Linux nodes, a CPU limit,
    empty nodes consolidated after 5 s (so ``--verify-scale-down`` sees the node go soon)."""
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {"group": NODECLASS_GROUP, "kind": NODECLASS_KIND, "name": NODECLASS},
                    "requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    ],
                    "expireAfter": "720h",
                }
            },
            "limits": {"cpu": cpu_limit},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "5s"},
        },
    }


LOOPBACK_PATCH = "loopback-1"
"""Names our one change to Karpenter's source (bump it when the change changes: the build's cache key
follows the replace line that names the patched copy)."""
LOOPBACK_EDITS = (
    TextEdit(
        "pkg/operator/operator.go",
        'fmt.Sprintf(":%d", options.FromContext(ctx).',
        'fmt.Sprintf("127.0.0.1:%d", options.FromContext(ctx).',
        count=2,
    ),
)
"""Karpenter's operator binds its metrics and health servers to ``:PORT``, every interface, and has no flag
for the address; the sandbox must not listen beyond loopback."""


def loopback_module(version: str = KARPENTER_VERSION) -> Path:
    """A copy of Karpenter's module whose metrics and health servers listen on 127.0.0.1 only (the copy,
    in the shared cache beside the build wrappers, differs from the module in those two lines only)."""
    return patched_module(KARPENTER_MODULE, version, LOOPBACK_PATCH, LOOPBACK_EDITS)


def build_karpenter(progress: Callable[[str], None] | None = None) -> Path:
    """Karpenter with the KWOK provider, built from the Go module proxy into the shared cache the first time
    (about 3 min with warm module and build caches on 2 cores; see the plugin's README for a cold build),
    from :func:`loopback_module`'s copy."""
    replaces = [f"{KARPENTER_MODULE} => {patched_module_path(KARPENTER_MODULE, KARPENTER_VERSION, LOOPBACK_PATCH)}"]
    built = go_command_path(BINARY_NAME, KARPENTER_VERSION, replaces=replaces)
    if built.exists():
        return built
    loopback_module()
    return go_command(
        BINARY_NAME, KARPENTER_MODULE, KARPENTER_VERSION, KARPENTER_PACKAGE, progress=progress, replaces=replaces
    )


def module_directory(version: str = KARPENTER_VERSION) -> Path:
    """Karpenter's module at ``version`` in the shared module cache (downloaded if the build's copy is gone).

    :raises SandboxError: when ``go`` is missing or the download fails.
    """
    return go_module_directory(KARPENTER_MODULE, version)


def load_crds(version: str = KARPENTER_VERSION) -> list[dict[str, Any]]:
    """Karpenter's CRDs for the KWOK provider at ``version``: NodePool, NodeClaim, NodeOverlay, KWOKNodeClass."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    root = module_directory(version)
    documents: list[dict[str, Any]] = []
    for directory in _CRD_DIRECTORIES:
        for path in sorted((root / directory).glob("*.yaml")):
            with path.open(encoding="utf-8") as stream:
                documents += [
                    doc
                    for doc in yaml.load_all(stream, Loader=loader)
                    if doc and doc.get("kind") == "CustomResourceDefinition"
                ]
    if not {"nodepools.karpenter.sh", "nodeclaims.karpenter.sh"} <= {doc["metadata"]["name"] for doc in documents}:
        raise SandboxError(f"{KARPENTER_MODULE}@{version} lacks the NodePool/NodeClaim CRDs in {_CRD_DIRECTORIES}")
    return documents


class KarpenterAddon:
    """Per cluster: Karpenter's CRDs, one Karpenter process, the KWOKNodeClass and the NodePool ``default``."""

    name = PROCESS_NAME

    def __init__(self) -> None:
        self._health_ports: dict[str, int] = {}

    def prepare(self, progress: Callable[[str], None]) -> None:
        """Build Karpenter (the first time only) and make sure its CRD files are at hand, before any sandbox
        start-up deadline runs."""
        build_karpenter(progress)
        module_directory()

    def start(self, context: AddonContext) -> Sequence[ProcessSpec]:
        """Install the CRDs (served before Karpenter starts: its controllers watch those kinds), write the
        instance types and return the Karpenter process."""
        install_crds(context, load_crds(), _CRDS_ESTABLISHED_TIMEOUT)
        instance_types = context.work_dir / "instance-types.json"
        instance_types.write_text(json.dumps(instance_types_document(), indent=2), encoding="utf-8")
        health_port = self._health_ports[context.cluster_name] = context.allocate_port()
        argv = (
            str(build_karpenter()),
            "--disable-leader-election",
            # Karpenter binds both on every interface (":PORT"); there is no flag for the address.
            f"--metrics-port={context.allocate_port()}",
            f"--health-probe-port={health_port}",
            f"--instance-types-file-path={instance_types}",
            # info: every provisioning, lifecycle and disruption decision, without the per-reconcile debug lines.
            "--log-level=info",
        )
        # Karpenter has no --kubeconfig flag; controller-runtime reads $KUBECONFIG.
        env = {"KUBECONFIG": str(context.kubeconfig)}
        log_file = context.work_dir / "karpenter.log"
        return [ProcessSpec(f"{context.cluster_name}/{PROCESS_NAME}", argv, log_file, env)]

    def wait_ready(self, context: AddonContext, timeout: float) -> None:
        """Create the KWOKNodeClass and the NodePool; wait until Karpenter is ready and has marked the
        NodePool Ready (so it has resolved the KWOKNodeClass and validated the NodePool)."""
        timeout = max(timeout, _MINIMUM_READY_TIMEOUT)
        deadline = time.monotonic() + timeout
        log_file = context.work_dir / "karpenter.log"
        for path, manifest in ((_NODECLASSES_PATH, nodeclass_manifest()), (_NODEPOOLS_PATH, nodepool_manifest())):
            # The API server serves a new CRD's paths a moment after Established: retry until it takes it.
            wait_until(
                functools.partial(created_when_served, context.api, path, manifest),
                deadline,
                f"{context.cluster_name}: could not create {manifest['kind']} {manifest['metadata']['name']} "
                f"within {timeout:.0f}s",
            )
        health = f"http://127.0.0.1:{self._health_ports[context.cluster_name]}/readyz"
        wait_until(
            lambda: answers_http_ok(health),
            deadline,
            lambda: (
                f"{context.cluster_name}: Karpenter not ready ({health}) after {timeout:.0f}s; {log_tail(log_file)}"
            ),
        )
        wait_until(
            lambda: _ready(get_or_none(context.api, f"{_NODEPOOLS_PATH}/{NODEPOOL}")),
            deadline,
            lambda: f"{context.cluster_name}: NodePool {NODEPOOL} not Ready after {timeout:.0f}s; {log_tail(log_file)}",
        )

    def stop(self, context: AddonContext) -> None:
        """Nothing to release: its objects live in the cluster's data, which ``down`` removes."""

    def cluster_settings(self, context: AddonContext) -> Mapping[str, object]:
        """The ``karpenter`` check's NodePool on this sandbox cluster."""
        return {"karpenter-nodepool": NODEPOOL}


def _ready(obj: Mapping[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(item.get("type") == "Ready" and item.get("status") == "True" for item in conditions)
