"""Calling a hook one plugin at a time, so one broken plugin never sinks a run.

pluggy calls every implementation of a hook in one go and lets the first exception escape, which would
stop every other plugin's implementation with it (and, inside the engine's task group, cancel every
check). Here each implementation is called on its own, in pluggy's order (last registered first,
``tryfirst``/``trylast`` honoured); one that raises becomes a :class:`PluginProblem` naming the plugin
and the hook, and the others still run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kibertas_async.results import PluginProblem


@dataclass(frozen=True)
class HookAnswer:
    """What one plugin's implementation of a hook returned."""

    plugin: str
    value: Any


def hook_name(caller: Any) -> str:
    """The hook's name as plugins implement it (``kibertas_async_run_started``)."""
    return str(getattr(caller, "name", caller))


def call_each(caller: Any, problems: list[PluginProblem], **kwargs: Any) -> list[HookAnswer]:
    """Call every implementation of the hook ``caller`` (``registry.hook.kibertas_async_...``) on its own.

    Returns what each implementation returned (``None`` answers left out), in call order; appends a
    :class:`PluginProblem` to ``problems`` for each one that raised. ``BaseException`` (cancellation,
    ``KeyboardInterrupt``) is not caught.
    """
    answers: list[HookAnswer] = []
    name = hook_name(caller)
    for impl in reversed(caller.get_hookimpls()):
        if getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False):
            problems.append(
                PluginProblem(impl.plugin_name, "hook wrappers are not supported; implement the hook itself", name)
            )
            continue
        try:
            value = impl.function(*[kwargs[arg] for arg in impl.argnames])
        except Exception as error:
            problems.append(PluginProblem(impl.plugin_name, f"{type(error).__name__}: {error}", name))
            continue
        if value is not None:
            answers.append(HookAnswer(impl.plugin_name, value))
    return answers
