"""The plugin: the ``cluster-autoscaler`` and ``karpenter`` checks, and their sandbox add-ons.

Registered through the entry point ``cluster-autoscaler = "kibertas_async_cluster_autoscaler.plugin"``
in the ``kibertas_async`` group. The add-on modules are imported only when a sandbox starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kibertas_async import Check, hookimpl
from kibertas_async_cluster_autoscaler.checks import ClusterAutoscalerCheck, KarpenterCheck

if TYPE_CHECKING:
    from kibertas_async.sandbox.addons import SandboxAddon


@hookimpl
def kibertas_async_register_checks() -> list[type[Check]]:
    """``cluster-autoscaler`` and ``karpenter``."""
    return [ClusterAutoscalerCheck, KarpenterCheck]


@hookimpl(optionalhook=True)  # specified by the sandbox (kibertas_async.sandbox.hookspecs)
def kibertas_async_register_sandbox_addons() -> list[SandboxAddon]:
    """The sandbox autoscaler (cluster-autoscaler's stand-in over kwok nodes) and the real Karpenter."""
    from kibertas_async_cluster_autoscaler.sandbox.addon import SandboxAutoscalerAddon
    from kibertas_async_cluster_autoscaler.sandbox.karpenter import KarpenterAddon

    return [SandboxAutoscalerAddon(), KarpenterAddon()]
