"""The built-in diagnostics, registered as an ordinary plugin: events, pods, logs and waited-on objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kibertas_async._markers import hookimpl
from kibertas_async.diagnostics.kubernetes import KubernetesDiagnostics

if TYPE_CHECKING:
    from kibertas_async.diagnostics.sources import DiagnosticSource
    from kibertas_async.results import CheckResult


@hookimpl(tryfirst=True)  # first in the list, so its findings lead (each source's first comes first)
def kibertas_async_register_diagnostics(result: CheckResult) -> list[DiagnosticSource]:
    """For every check: what the cluster says about its namespaces, its add-ons and the awaited object."""
    return [KubernetesDiagnostics()]
