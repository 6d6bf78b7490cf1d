"""Failure diagnostics: on FAILED, ERROR or TIMEOUT, what an SRE would look at next, attached to the result.

Collected before the check's cleanup (its objects still exist), from every source the plugins register
(``kibertas_async_register_diagnostics``; the built-in one reads events, pods, the add-ons' logs and the
object a step waited on), concurrently, shielded from cancellation and within :data:`COLLECT_TIMEOUT`
seconds in all. Bounded: :data:`MAX_DIAGNOSTICS` per result (each source's first, then each one's
second, ...), :data:`MAX_LINES` lines of :data:`MAX_LINE_CHARS` characters each; every text goes through
the run's secret redactor. Not collected after a signal (cleanup comes first then) or for a check that
passed or was skipped.
"""

from kibertas_async.checks.context import WaitedOn
from kibertas_async.diagnostics.collect import bounded, collect_diagnostics, select
from kibertas_async.diagnostics.sources import (
    COLLECT_TIMEOUT,
    MAX_DIAGNOSTICS,
    MAX_LINE_CHARS,
    MAX_LINES,
    REQUEST_TIMEOUT,
    AddonWorkload,
    DiagnosticsContext,
    DiagnosticSource,
)

__all__ = [
    "COLLECT_TIMEOUT",
    "MAX_DIAGNOSTICS",
    "MAX_LINES",
    "MAX_LINE_CHARS",
    "REQUEST_TIMEOUT",
    "AddonWorkload",
    "DiagnosticSource",
    "DiagnosticsContext",
    "WaitedOn",
    "bounded",
    "collect_diagnostics",
    "select",
]
