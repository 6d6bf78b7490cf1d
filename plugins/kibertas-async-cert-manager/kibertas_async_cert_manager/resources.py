"""cert-manager's resource types and the helpers to read their conditions, shared by check and sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kibertas_async import Resource

GROUP = "cert-manager.io"
CERTIFICATES = Resource(GROUP, "v1", "certificates", "Certificate")
ISSUERS = Resource(GROUP, "v1", "issuers", "Issuer")
CLUSTER_ISSUERS = Resource(GROUP, "v1", "clusterissuers", "ClusterIssuer", namespaced=False)


def condition(obj: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    """The status condition of type ``kind`` (``Ready``, ``Issuing``), or ``None``."""
    if obj is None:
        return None
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return None


def is_ready(obj: Mapping[str, Any] | None) -> bool:
    """Whether ``Ready`` is ``True`` for the object's current generation (when the condition says which)."""
    ready = condition(obj, "Ready")
    if ready is None or ready.get("status") != "True" or obj is None:
        return False
    observed = ready.get("observedGeneration")
    return observed is None or observed == obj.get("metadata", {}).get("generation")


def describe_condition(obj: Mapping[str, Any] | None, kind: str = "Ready") -> str:
    """``Ready=False (DoesNotExist): Issuing certificate as Secret does not exist``, for progress and reasons."""
    if obj is None:
        return "not created yet"
    found = condition(obj, kind)
    if found is None:
        return f"no {kind} condition yet"
    reason = f" ({found['reason']})" if found.get("reason") else ""
    message = f": {found['message']}" if found.get("message") else ""
    return f"{kind}={found.get('status')}{reason}{message}"
