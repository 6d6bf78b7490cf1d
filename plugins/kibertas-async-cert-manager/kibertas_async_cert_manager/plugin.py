"""The plugin: the ``cert-manager`` check and, for the sandbox, cert-manager's CRDs and an issuer.

Registered through the entry point ``cert-manager = "kibertas_async_cert_manager.plugin"`` in the
``kibertas_async`` group. Importing it is cheap: ``cryptography`` is imported only when the check runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kibertas_async import Check, hookimpl
from kibertas_async_cert_manager.check import CertManagerCheck

if TYPE_CHECKING:
    from kibertas_async.sandbox.addons import SandboxAddon


@hookimpl
def kibertas_async_register_checks() -> list[type[Check]]:
    """The ``cert-manager`` check."""
    return [CertManagerCheck]


@hookimpl(optionalhook=True)  # specified by the sandbox (kibertas_async.sandbox.hookspecs)
def kibertas_async_register_sandbox_addons() -> list[SandboxAddon]:
    """cert-manager's CRDs, the ``selfsigned-issuer`` ClusterIssuer and the sandbox issuer, per cluster."""
    from kibertas_async_cert_manager.sandbox.addon import CertManagerAddon

    return [CertManagerAddon()]
