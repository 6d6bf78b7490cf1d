"""A test plugin with diagnostics sources of its own (``--plugin tests.diagnostics.extra_plugin``): one that
adds a diagnostic naming the result, one whose ``collect`` raises, one that never returns."""

from __future__ import annotations

import anyio

from kibertas_async import hookimpl
from kibertas_async.diagnostics import DiagnosticsContext, DiagnosticSource
from kibertas_async.results import CheckResult, Diagnostic

EXTRA_SOURCE = "extra-plugin probe"


class NamesTheResult:
    """Says which step failed and how many namespaces the check used: a plugin's own view."""

    name = "names-the-result"

    async def collect(self, context: DiagnosticsContext) -> list[Diagnostic]:
        """One diagnostic, with a line per namespace the check used."""
        title = f"{context.result.check} {context.result.outcome.value} in step {context.result.step!r}"
        return [Diagnostic(EXTRA_SOURCE, title, [f"namespace {namespace}" for namespace in context.namespaces])]


class RaisesInCollect:
    """A broken source: its collect raises."""

    name = "raises-in-collect"

    async def collect(self, context: DiagnosticsContext) -> list[Diagnostic]:
        """Always raises."""
        raise RuntimeError("the extra plugin's collect is broken")


class NeverReturns:
    """A source that ignores the deadline; the engine must not wait for it beyond its time box."""

    name = "never-returns"

    async def collect(self, context: DiagnosticsContext) -> list[Diagnostic]:
        """Sleeps forever (until cancelled by the engine's time box)."""
        await anyio.sleep_forever()
        return []


@hookimpl
def kibertas_async_register_diagnostics(result: CheckResult) -> list[DiagnosticSource]:
    """Every source above, for every result that did not pass."""
    return [NamesTheResult(), RaisesInCollect(), NeverReturns()]
