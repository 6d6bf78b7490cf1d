"""The plugin: registers the ``datadog-agent`` check, the results notifier and its sandbox add-on.

Registered through the entry point ``datadog = "kibertas_async_datadog.plugin"`` in the ``kibertas_async``
group. Importing it is cheap: ``datadog_api_client`` is imported only when the check runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kibertas_async import Check, hookimpl
from kibertas_async_datadog.check import DatadogAgentCheck
from kibertas_async_datadog.results import RESULTS_OPTIONS, results_notifiers

if TYPE_CHECKING:
    from kibertas_async import Notifier, Option, OptionValues
    from kibertas_async.sandbox.addons import SandboxAddon


@hookimpl
def kibertas_async_register_checks() -> list[type[Check]]:
    """The ``datadog-agent`` check."""
    return [DatadogAgentCheck]


@hookimpl
def kibertas_async_register_options() -> list[Option[Any]]:
    """The run-wide options of the results notifier (the check's own come with the check)."""
    return list(RESULTS_OPTIONS)


@hookimpl
def kibertas_async_register_notifiers(options: OptionValues) -> list[Notifier]:
    """The results notifier, when ``--datadog-results`` is on."""
    return list(results_notifiers(options))


@hookimpl(optionalhook=True)  # specified by the sandbox (kibertas_async.sandbox.hookspecs)
def kibertas_async_register_sandbox_addons() -> list[SandboxAddon]:
    """A Datadog query API stand-in per sandbox cluster, fed by its ``datadog-agent`` DaemonSet."""
    from kibertas_async_datadog.sandbox import DatadogStandinAddon

    return [DatadogStandinAddon()]
