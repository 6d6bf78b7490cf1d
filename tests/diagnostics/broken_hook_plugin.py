"""A test plugin whose ``kibertas_async_register_diagnostics`` hook itself raises
(``--plugin tests.diagnostics.broken_hook_plugin``)."""

from __future__ import annotations

from kibertas_async import hookimpl
from kibertas_async.diagnostics import DiagnosticSource
from kibertas_async.results import CheckResult


@hookimpl
def kibertas_async_register_diagnostics(result: CheckResult) -> list[DiagnosticSource]:
    """Raises: a plugin problem, and the run goes on."""
    raise ValueError(f"no diagnostics for {result.check}")
