"""The plugin: the ``ingress`` check, its options and the sandbox add-ons it is tested against.

Registered through the entry point ``ingress = "kibertas_async_ingress.plugin"`` in the ``kibertas_async``
group. Importing it is cheap: dnspython and aiohttp are imported when the check reaches DNS and HTTP, the
sandbox add-ons only when a sandbox starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kibertas_async import hookimpl
from kibertas_async_ingress.check import IngressCheck

if TYPE_CHECKING:
    from kibertas_async import Check
    from kibertas_async.sandbox.addons import SandboxAddon


@hookimpl
def kibertas_async_register_checks() -> list[type[Check]]:
    """The ``ingress`` check."""
    return [IngressCheck]


@hookimpl(optionalhook=True)  # specified by the sandbox (kibertas_async.sandbox.hookspecs)
def kibertas_async_register_sandbox_addons() -> list[SandboxAddon]:
    """BIND9 (the zone), external-dns (writing into it) and the sandbox ingress controller, per cluster."""
    from kibertas_async_ingress.sandbox import ExternalDnsAddon, IngressControllerAddon, ZoneServerAddon

    zones = ZoneServerAddon()
    return [zones, ExternalDnsAddon(zones), IngressControllerAddon()]
