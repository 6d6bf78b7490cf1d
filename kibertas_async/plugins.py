"""Finding and loading plugins: built-ins first, then the ``kibertas_async`` entry points.

Environment:

- ``KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry-point plugins (built-ins stay).
- ``KIBERTAS_ASYNC_DISABLE_PLUGINS=a,b``: skip those entry points by name (``--disable-plugin`` too).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from kibertas_async import hookspecs
from kibertas_async.checks import Check
from kibertas_async.errors import PluginError
from kibertas_async.hookcalls import call_each
from kibertas_async.options import Option
from kibertas_async.results import PluginProblem

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
BUILTIN_PLUGINS = (
    "kibertas_async.engine.settings",
    "kibertas_async.outputs.builtin",
    "kibertas_async.diagnostics.builtin",
)
AUTOLOAD_ENV = "KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_ENV = "KIBERTAS_ASYNC_DISABLE_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """Where a plugin came from, for ``list`` and error messages."""

    name: str
    distribution: str
    version: str


@dataclass
class Registry:
    """What the loaded plugins registered: checks, options, and which plugin registered each."""

    manager: pluggy.PluginManager
    checks: dict[str, type[Check]] = field(default_factory=dict)
    options: list[Option[Any]] = field(default_factory=list)
    check_plugin: dict[str, PluginInfo] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)
    plugin_info: dict[str, PluginInfo] = field(default_factory=dict)
    """Plugin name (as pluggy knows it) → where it came from."""

    @property
    def hook(self) -> Any:
        """The pluggy hook relay: ``registry.hook.kibertas_async_run_started(run=...)``."""
        return self.manager.hook


def create_plugin_manager(
    *,
    extra_plugins: Iterable[str] = (),
    disabled: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    specs: Iterable[ModuleType] = (),
) -> Registry:
    """Build the plugin manager (never at import time), load plugins, collect what they register.

    A plugin that fails to import is recorded in ``Registry.problems`` by name; the others still load.
    A plugin implementing an unknown hook (a misspelling) is a :class:`PluginError`.

    ``specs``: hook specifications beside the contract's, from whoever builds this manager and calls
    their hooks (the sandbox gives :mod:`kibertas_async.sandbox.hookspecs`). A plugin marks its
    implementations of such hooks ``optionalhook=True``, so a manager without the spec accepts them.
    """
    env = os.environ if environ is None else environ
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for spec in specs:
        manager.add_hookspecs(spec)
    registry = Registry(manager=manager)
    skip = {name.strip() for name in env.get(DISABLE_ENV, "").split(",") if name.strip()} | set(disabled)

    for module_name in BUILTIN_PLUGINS:
        _register(
            registry,
            importlib.import_module(module_name),
            PluginInfo(module_name, "kibertas-async", _own_version()),
        )
    if env.get(AUTOLOAD_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}:
        for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
            if entry_point.name in skip or manager.has_plugin(entry_point.name):
                continue
            dist = entry_point.dist
            info = PluginInfo(
                entry_point.name,
                dist.metadata["Name"] if dist is not None else "?",
                dist.version if dist is not None else "?",
            )
            try:
                plugin = entry_point.load()
            except Exception as error:
                registry.problems.append(PluginProblem(entry_point.name, f"{type(error).__name__}: {error}"))
                continue
            _register(registry, plugin, info)
    for module_name in extra_plugins:
        try:
            plugin = importlib.import_module(module_name)
        except Exception as error:
            registry.problems.append(PluginProblem(module_name, f"{type(error).__name__}: {error}"))
            continue
        _register(registry, plugin, PluginInfo(module_name, "(--plugin)", ""))
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginError(f"a plugin implements an unknown hook: {error}") from None
    _collect(registry)
    return registry


def _register(registry: Registry, plugin: ModuleType | object, info: PluginInfo) -> None:
    try:
        registry.manager.register(plugin, name=info.name)
    except (pluggy.PluginValidationError, ValueError) as error:
        raise PluginError(f"plugin {info.name!r} cannot be registered: {error}") from None
    registry.plugin_info[info.name] = info


def _collect(registry: Registry) -> None:
    seen_options: dict[str, Option[Any]] = {}

    def add_option(option: Option[Any], owner: str) -> None:
        existing = seen_options.get(option.name)
        if existing is option:
            return
        if existing is not None:
            raise PluginError(f"option {option.flag} is registered twice (again by plugin {owner!r})")
        seen_options[option.name] = option
        registry.options.append(option)

    hook = registry.manager.hook
    # In load order (pluggy answers last-registered first), each plugin on its own: one that raises is a
    # problem named after it and its hook, and the others' checks and options still load.
    for answer in reversed(call_each(hook.kibertas_async_register_options, registry.problems)):
        for option in _as_list(answer.value, answer.plugin, "kibertas_async_register_options"):
            add_option(option, answer.plugin)
    for answer in reversed(call_each(hook.kibertas_async_register_checks, registry.problems)):
        for check in _as_list(answer.value, answer.plugin, "kibertas_async_register_checks"):
            if not (isinstance(check, type) and issubclass(check, Check)):
                raise PluginError(f"plugin {answer.plugin!r} registered {check!r}, which is not a Check subclass")
            if check.name in registry.checks:
                raise PluginError(
                    f"check {check.name!r} is registered by two plugins: "
                    f"{registry.check_plugin[check.name].name!r} and {answer.plugin!r}"
                )
            registry.checks[check.name] = check
            registry.check_plugin[check.name] = registry.plugin_info.get(
                answer.plugin, PluginInfo(answer.plugin, "?", "?")
            )
            for option in check.options:
                add_option(option, answer.plugin)


def _as_list(value: object, plugin: str, hook: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise PluginError(f"plugin {plugin!r}: {hook} must return a list, not {type(value).__name__}")
    return list(value)


def _own_version() -> str:
    from kibertas_async import __version__

    return __version__
