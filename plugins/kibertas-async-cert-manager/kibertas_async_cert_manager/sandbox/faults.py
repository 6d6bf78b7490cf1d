"""The cert-manager add-on's fault switch for tests: issuing that misbehaves on one sandbox cluster.

A real cert-manager cannot be told to misissue. While :func:`issuer_fault` runs, the cluster's real
controller (when it runs) is paused with SIGSTOP, and the fault wakes the stand-in issuer
(:mod:`~kibertas_async_cert_manager.sandbox.issuer`), which then does all the issuing there: expired,
not yet valid or misnamed leaves, a wrong key, or nothing at all (:class:`Fault`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from kibertas_async.sandbox import SandboxCluster
from kibertas_async.sandbox.api import ApiError
from kibertas_async_cert_manager.sandbox.addon import CLUSTER_RESOURCE_NAMESPACE, CONTROLLER_PROCESS
from kibertas_async_cert_manager.sandbox.issuer import FAULT_CONFIGMAP, FAULT_KEY, Fault

__all__ = ["Fault", "issuer_fault"]


@contextlib.contextmanager
def issuer_fault(cluster: SandboxCluster, fault: Fault) -> Iterator[None]:
    """``cluster``'s issuing shows ``fault`` while the block runs; afterwards the real controller runs again."""
    controller = cluster.processes.get(CONTROLLER_PROCESS)
    api = cluster.api()
    path = f"/api/v1/namespaces/{CLUSTER_RESOURCE_NAMESPACE}/configmaps"
    if controller is not None:
        controller.pause()
    try:
        api.create(path, {"metadata": {"name": FAULT_CONFIGMAP}, "data": {FAULT_KEY: fault.value}})
        try:
            yield
        finally:
            with contextlib.suppress(ApiError):
                api.request("DELETE", f"{path}/{FAULT_CONFIGMAP}")
    finally:
        if controller is not None:
            controller.resume()
