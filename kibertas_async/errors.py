"""The exceptions kibertas-async raises and understands.

Hierarchy::

    KibertasError                 base of everything below
    ├── UsageError                bad input found before any check started: one line, exit code 2
    ├── PluginError               a plugin could not be loaded or broke the plugin contract
    └── CheckError                raised inside a check; decides the check's outcome
        ├── CheckFailed           the add-on does not work: outcome FAILED (NG), with step and reason
        ├── CheckSkipped          the check does not apply here: outcome SKIPPED
        └── StepTimeout           a step's own deadline passed: outcome TIMEOUT, naming the step

Any other exception escaping a check makes its outcome ERROR: the tool or its infrastructure broke,
not (as far as we know) the add-on.
"""

from __future__ import annotations


class KibertasError(Exception):
    """Base class of every error kibertas-async raises on purpose."""


class UsageError(KibertasError):
    """Bad input (flags, config file, kubeconfig, environment) found before anything was created.

    The message is shown to the user as a single line, so it should say what is wrong and what to do.
    """


class PluginError(KibertasError):
    """A plugin failed to import or registered something that breaks the plugin contract."""


class CheckError(KibertasError):
    """Base of the exceptions that end a check with a definite outcome."""

    def __init__(self, reason: str, *, step: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.step = step


class CheckFailed(CheckError):
    """The add-on under test does not work. ``reason`` says what was observed, for a human."""


class CheckSkipped(CheckError):
    """The check does not apply to this cluster (for example the add-on is not installed on purpose)."""


class StepTimeout(CheckError):
    """A step did not finish within its own timeout."""

    def __init__(self, reason: str, *, step: str, timeout: float) -> None:
        super().__init__(reason, step=step)
        self.timeout = timeout


def primary_exception(error: BaseException) -> BaseException:
    """The exception that explains a failure, looking inside exception groups (from task groups): the
    first :class:`CheckError` found at any depth, else the first exception of the innermost group."""
    if not isinstance(error, BaseExceptionGroup):
        return error
    check_errors = error.subgroup(lambda e: isinstance(e, CheckError))
    if check_errors is not None:
        return primary_exception(check_errors.exceptions[0])
    return primary_exception(error.exceptions[0])
