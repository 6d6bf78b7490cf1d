"""The plugin contract: every hook a plugin may implement.

Hooks are synchronous and return objects; the async work lives on those objects (a check's ``run``, a
notifier's ``notify``). Implement a hook with ``@kibertas_async.hookimpl`` on a module-level function of
the module your entry point names::

    [project.entry-points.kibertas_async]
    my-plugin = "my_package.plugin"

The sandbox's hook (``kibertas_async_register_sandbox_addons``) is specified by the sandbox itself,
:mod:`kibertas_async.sandbox.hookspecs`: the runtime never imports the sandbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Re-exported: ``kibertas_async.hookspecs.hookimpl`` and ``PROJECT_NAME`` keep working.
from kibertas_async._markers import PROJECT_NAME as PROJECT_NAME
from kibertas_async._markers import hookimpl as hookimpl
from kibertas_async._markers import hookspec

if TYPE_CHECKING:
    from kibertas_async.checks import Check
    from kibertas_async.diagnostics import DiagnosticSource
    from kibertas_async.options import Option, OptionValues
    from kibertas_async.outputs import Notifier, Reporter, RunInfo
    from kibertas_async.results import CheckResult, RunReport


@hookspec
def kibertas_async_register_checks() -> list[type[Check]]:
    """Return the check classes this plugin provides.

    Each check's ``options`` are registered with it. Names must be unique across all plugins.
    """
    raise NotImplementedError


@hookspec
def kibertas_async_register_options() -> list[Option[Any]]:
    """Return options that are not tied to one check (e.g. a notifier's token and room).

    Each becomes a ``run`` flag ``--<name>``, environment variables and a config-file key.
    """
    raise NotImplementedError


@hookspec
def kibertas_async_register_notifiers(options: OptionValues) -> list[Notifier]:
    """Return the notifiers to send the run's summary through, given the run-wide option values.

    :param options: run-wide option values; return ``[]`` when your notifier is not configured.
    """
    raise NotImplementedError


@hookspec
def kibertas_async_register_reporters(options: OptionValues) -> list[Reporter]:
    """Return the reporters that write the run's report (files, terminal tables), given the options.

    :param options: run-wide option values; return ``[]`` when your report was not asked for.
    """
    raise NotImplementedError


@hookspec
def kibertas_async_register_diagnostics(result: CheckResult) -> list[DiagnosticSource]:
    """Return diagnostic sources to collect from when a check did not pass (FAILED, ERROR or TIMEOUT).

    Called for each such result, before the check's cleanup (its objects still exist). Each source's
    ``async collect(context)`` gets a :class:`~kibertas_async.diagnostics.DiagnosticsContext` (the
    cluster's client, the check's namespaces, its add-ons' workloads, the object its step waited on) and
    returns :class:`~kibertas_async.results.Diagnostic` objects, most telling first. All sources run
    at once within a few seconds in all; what they return is bounded and redacted.

    :param result: the outcome, failing step and reason so far; return ``[]`` for a check you know nothing of.
    """
    raise NotImplementedError


@hookspec
def kibertas_async_run_started(run: RunInfo) -> None:
    """Called once, after options are resolved and before the first check starts.

    :param run: the run id, the clusters and the checks about to run.
    """


@hookspec
def kibertas_async_check_finished(result: CheckResult) -> None:
    """Called as each check finishes on each cluster (cleanup included).

    :param result: the outcome, the failing step and reason, the steps, what cleanup did.
    """


@hookspec
def kibertas_async_run_finished(report: RunReport) -> None:
    """Called once, after every check and cleanup, before reporters and notifiers run.

    :param report: the whole run's results.
    """
