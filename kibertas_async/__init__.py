"""kibertas-async: prove that a Kubernetes cluster's add-ons really work.

The public API for plugin authors is this flat namespace: the hook marker, the :class:`Check` base
class and what a check is given (:class:`CheckContext`), :class:`Option` and its parsers, the results
(:class:`Outcome`, :class:`CheckResult`, :class:`RunReport`), the output protocols
(:class:`Notifier`, :class:`Reporter`), the errors, the Kubernetes client (:class:`KubeClient`,
:func:`connect`, :class:`Informer`, the ready-made resources such as ``CONFIGMAPS``), the add-on version
helpers (:func:`report_addon_version`, :func:`workload_option`) and :func:`get_logger`. Plugins import
nothing else of kibertas_async but :mod:`kibertas_async.testing` (tests) and the sandbox's add-on API;
``lint-imports`` enforces it (``.importlinter``). Everything not re-exported here may change without
notice.

Errors::

    KibertasError
    ├── UsageError        bad input: one line, exit code 2
    ├── PluginError       a plugin broke the contract
    ├── TemporaryError    a poll attempt's "not yet" (tried again, after its delay)
    └── CheckError        ends a check: CheckFailed (NG), CheckSkipped, StepTimeout
        └── CheckFailed
            └── PermanentError   a poll attempt's NG: no retry
"""

from typing import TYPE_CHECKING, Any

from kibertas_async._version import __version__

if TYPE_CHECKING:
    from kibertas_async._markers import hookimpl
    from kibertas_async.checks import Check, CheckContext, Permission, Step
    from kibertas_async.checks.addon_version import WORKLOAD_READ, Workload, report_addon_version, workload_option
    from kibertas_async.checks.waiting import PermanentError, PollState, TemporaryError
    from kibertas_async.compare import outcome_mark
    from kibertas_async.errors import (
        CheckError,
        CheckFailed,
        CheckSkipped,
        KibertasError,
        PluginError,
        StepTimeout,
        UsageError,
    )
    from kibertas_async.events import get_logger
    from kibertas_async.kube import (
        Change,
        ClusterTarget,
        Informer,
        KubeApiError,
        KubeClient,
        KubeObject,
        KubeUnavailable,
        Resource,
        connect,
    )
    from kibertas_async.kube.resources import (
        CONFIGMAPS,
        CUSTOMRESOURCEDEFINITIONS,
        DAEMONSETS,
        DEPLOYMENTS,
        ENDPOINTSLICES,
        EVENTS,
        INGRESSCLASSES,
        INGRESSES,
        NAMESPACES,
        NODES,
        PODS,
        REPLICASETS,
        ROLEBINDINGS,
        ROLES,
        SECRETS,
        SERVICEACCOUNTS,
        SERVICES,
    )
    from kibertas_async.options import (
        Option,
        OptionValues,
        format_duration,
        optional,
        parse_bool,
        parse_duration,
        parse_list,
        parse_mapping,
        parse_positive_int,
    )
    from kibertas_async.outputs import Notifier, Reporter, RunInfo
    from kibertas_async.results import CheckResult, CleanupResult, Comparison, Outcome, RunReport, StepResult

# Loaded on first use, so that `kibertas-async --help` does not pay for anyio, pluggy and the rest.
_LAZY = {
    "WORKLOAD_READ": "kibertas_async.checks.addon_version",
    "Workload": "kibertas_async.checks.addon_version",
    "report_addon_version": "kibertas_async.checks.addon_version",
    "workload_option": "kibertas_async.checks.addon_version",
    "Change": "kibertas_async.kube",
    "ClusterTarget": "kibertas_async.kube",
    "Informer": "kibertas_async.kube",
    "KubeApiError": "kibertas_async.kube",
    "KubeUnavailable": "kibertas_async.kube",
    "connect": "kibertas_async.kube",
    "CONFIGMAPS": "kibertas_async.kube.resources",
    "CUSTOMRESOURCEDEFINITIONS": "kibertas_async.kube.resources",
    "DAEMONSETS": "kibertas_async.kube.resources",
    "DEPLOYMENTS": "kibertas_async.kube.resources",
    "ENDPOINTSLICES": "kibertas_async.kube.resources",
    "EVENTS": "kibertas_async.kube.resources",
    "INGRESSCLASSES": "kibertas_async.kube.resources",
    "INGRESSES": "kibertas_async.kube.resources",
    "NAMESPACES": "kibertas_async.kube.resources",
    "NODES": "kibertas_async.kube.resources",
    "PODS": "kibertas_async.kube.resources",
    "REPLICASETS": "kibertas_async.kube.resources",
    "ROLEBINDINGS": "kibertas_async.kube.resources",
    "ROLES": "kibertas_async.kube.resources",
    "SECRETS": "kibertas_async.kube.resources",
    "SERVICEACCOUNTS": "kibertas_async.kube.resources",
    "SERVICES": "kibertas_async.kube.resources",
    "get_logger": "kibertas_async.events",
    "Comparison": "kibertas_async.results",
    "outcome_mark": "kibertas_async.compare",
    "Check": "kibertas_async.checks",
    "CheckContext": "kibertas_async.checks",
    "Permission": "kibertas_async.checks",
    "Step": "kibertas_async.checks",
    "PermanentError": "kibertas_async.checks.waiting",
    "PollState": "kibertas_async.checks.waiting",
    "TemporaryError": "kibertas_async.checks.waiting",
    "CheckResult": "kibertas_async.results",
    "CleanupResult": "kibertas_async.results",
    "Outcome": "kibertas_async.results",
    "RunReport": "kibertas_async.results",
    "StepResult": "kibertas_async.results",
    "CheckError": "kibertas_async.errors",
    "CheckFailed": "kibertas_async.errors",
    "CheckSkipped": "kibertas_async.errors",
    "KibertasError": "kibertas_async.errors",
    "PluginError": "kibertas_async.errors",
    "StepTimeout": "kibertas_async.errors",
    "UsageError": "kibertas_async.errors",
    "hookimpl": "kibertas_async._markers",
    "KubeClient": "kibertas_async.kube",
    "KubeObject": "kibertas_async.kube",
    "Resource": "kibertas_async.kube",
    "Option": "kibertas_async.options",
    "OptionValues": "kibertas_async.options",
    "format_duration": "kibertas_async.options",
    "optional": "kibertas_async.options",
    "parse_bool": "kibertas_async.options",
    "parse_duration": "kibertas_async.options",
    "parse_list": "kibertas_async.options",
    "parse_mapping": "kibertas_async.options",
    "parse_positive_int": "kibertas_async.options",
    "Notifier": "kibertas_async.outputs",
    "Reporter": "kibertas_async.outputs",
    "RunInfo": "kibertas_async.outputs",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'kibertas_async' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


__all__ = [
    "CONFIGMAPS",
    "CUSTOMRESOURCEDEFINITIONS",
    "DAEMONSETS",
    "DEPLOYMENTS",
    "ENDPOINTSLICES",
    "EVENTS",
    "INGRESSCLASSES",
    "INGRESSES",
    "NAMESPACES",
    "NODES",
    "PODS",
    "REPLICASETS",
    "ROLEBINDINGS",
    "ROLES",
    "SECRETS",
    "SERVICEACCOUNTS",
    "SERVICES",
    "WORKLOAD_READ",
    "Change",
    "Check",
    "CheckContext",
    "CheckError",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "CleanupResult",
    "ClusterTarget",
    "Comparison",
    "Informer",
    "KibertasError",
    "KubeApiError",
    "KubeClient",
    "KubeObject",
    "KubeUnavailable",
    "Notifier",
    "Option",
    "OptionValues",
    "Outcome",
    "PermanentError",
    "Permission",
    "PluginError",
    "PollState",
    "Reporter",
    "Resource",
    "RunInfo",
    "RunReport",
    "Step",
    "StepResult",
    "StepTimeout",
    "TemporaryError",
    "UsageError",
    "Workload",
    "__version__",
    "connect",
    "format_duration",
    "get_logger",
    "hookimpl",
    "optional",
    "outcome_mark",
    "parse_bool",
    "parse_duration",
    "parse_list",
    "parse_mapping",
    "parse_positive_int",
    "report_addon_version",
    "workload_option",
]
