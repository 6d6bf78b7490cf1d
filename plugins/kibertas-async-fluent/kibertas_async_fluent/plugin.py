"""The plugin: registers the ``fluent`` check and its sandbox add-on.

Registered through the entry point ``fluent = "kibertas_async_fluent.plugin"`` in the ``kibertas_async``
group. Importing it is cheap: ``aioboto3`` is imported only when the check reaches S3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kibertas_async import Check, hookimpl
from kibertas_async_fluent.check import FluentCheck

if TYPE_CHECKING:
    from kibertas_async.sandbox.addons import SandboxAddon


@hookimpl
def kibertas_async_register_checks() -> list[type[Check]]:
    """The ``fluent`` check."""
    return [FluentCheck]


@hookimpl(optionalhook=True)  # specified by the sandbox (kibertas_async.sandbox.hookspecs)
def kibertas_async_register_sandbox_addons() -> list[SandboxAddon]:
    """moto S3 and a stand-in for fluentd per sandbox cluster."""
    from kibertas_async_fluent.sandbox import FluentAddon

    return [FluentAddon()]
