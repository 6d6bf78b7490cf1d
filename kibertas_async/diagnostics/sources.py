"""The contract of a diagnostics source: what it is given, what it returns, and the bounds it lives in.

A plugin adds its own diagnostics through the hook ``kibertas_async_register_diagnostics(result)``: it
returns :class:`DiagnosticSource` objects, and the engine awaits each one's ``collect(context)`` before
the check's cleanup, concurrently, shielded from cancellation and bounded by :data:`COLLECT_TIMEOUT`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import anyio

from kibertas_async.checks.context import WaitedOn

if TYPE_CHECKING:
    from kibertas_async.checks.addon_version import Workload
    from kibertas_async.kube.client import KubeClient
    from kibertas_async.options import OptionValues
    from kibertas_async.results import CheckResult, Diagnostic, StepResult

COLLECT_TIMEOUT = 5.0
"""Seconds all diagnostics of one result may take together; whatever is not in by then is left out."""
REQUEST_TIMEOUT = 3.0
"""Seconds one API request of the built-in diagnostics may take."""
MAX_DIAGNOSTICS = 8
"""Diagnostics kept per result."""
MAX_LINES = 20
"""Lines kept per diagnostic (the last one says how many more there were)."""
MAX_LINE_CHARS = 200
"""Characters kept per line, title and source."""


@dataclass(frozen=True)
class AddonWorkload:
    """An add-on the check tests, from one of its ``<add-on>-workload`` options."""

    addon: str
    """The option's name without ``-workload`` (``external-dns``)."""
    workload: Workload


@dataclass(frozen=True)
class DiagnosticsContext:
    """What a :class:`DiagnosticSource` is given for one result that did not pass."""

    result: CheckResult
    """The outcome, step and reason (cleanup has not run yet: the check's objects still exist)."""
    kube: KubeClient | None
    """The cluster's client (the check's own, so its requests are counted); ``None`` for a check that
    does not need Kubernetes, or could not connect."""
    options: OptionValues
    """The check's option values on this cluster."""
    steps: tuple[StepResult, ...] = ()
    """The check's steps so far (``detail``: what each last observed)."""
    namespaces: tuple[str, ...] = ()
    """The namespaces the check made or created objects in."""
    addons: tuple[AddonWorkload, ...] = ()
    """Where the add-ons the check tests run (its ``<add-on>-workload`` options)."""
    waited_on: WaitedOn | None = None
    """The object the failing step was waiting on, if it was waiting (``ctx.wait_for``)."""
    deadline: float = field(default_factory=lambda: anyio.current_time() + COLLECT_TIMEOUT)
    """When collection stops, on anyio's clock: a source should return what it has before then."""

    def time_left(self) -> float:
        """Seconds until :attr:`deadline` (0 when past)."""
        return max(0.0, self.deadline - anyio.current_time())


class DiagnosticSource(Protocol):
    """Something that collects diagnostics for a result that did not pass."""

    name: str
    """Short, for plugin problems (``cert-manager-requests``)."""

    async def collect(self, context: DiagnosticsContext) -> list[Diagnostic]:
        """The diagnostics, most telling first; bounded and redacted by the engine afterwards. Raising is a
        plugin problem (the run goes on); returning ``[]`` says there is nothing to add."""
        ...
