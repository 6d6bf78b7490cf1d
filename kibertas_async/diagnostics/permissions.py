"""The Kubernetes access the built-in diagnostics need, part of the engine's own RBAC declaration."""

from __future__ import annotations

from kibertas_async.checks.check import Permission

DIAGNOSTICS_PERMISSIONS: tuple[Permission, ...] = (
    # The events and pods of the check's namespaces and of its add-ons' namespaces.
    Permission("", ("events", "pods"), ("list",)),
    # The last lines of an add-on controller's log.
    Permission("", ("pods/log",), ("get",)),
)
"""Only used when a check did not pass; without them the diagnostics say ``not allowed ... (403)``. The
add-ons' Deployments and DaemonSets are listed with the checks' own ``WORKLOAD_READ``."""
