"""The ``--config`` file: option defaults and per-cluster overrides, in YAML (JSON is YAML too).

Example::

    defaults:
      ingress-class: alb
    clusters:
      old:
        ingress-hostname: check.old.example.com
      new:
        ingress-hostname: check.new.example.com

A kubeconfig context can name such a file too (``kibertas-async.io/settings``, see
:mod:`kibertas_async.clusters.selection`); :func:`with_context_settings` lays those values under the
``--config`` file's, so for each cluster the order is: ``--config`` ``clusters.<name>``, ``--config``
``defaults``, then the context's file (its ``clusters.<section>``, then its ``defaults``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kibertas_async._yaml import safe_load
from kibertas_async.errors import UsageError

if TYPE_CHECKING:
    from kibertas_async.options.option import Option

_TOP_LEVEL_KEYS = ("defaults", "clusters")


class ContextSettings(Protocol):
    """What :func:`with_context_settings` reads of a context's settings extension: the shape of
    :class:`kibertas_async.clusters.selection.ContextSettings`, named here so options (a bottom layer)
    does not import clusters, which imports the kube client."""

    @property
    def config(self) -> Path: ...

    @property
    def section(self) -> str: ...

    @property
    def problem(self) -> str: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class ConfigFile:
    """A parsed config file. An absent ``--config`` is an empty one."""

    path: Path | None = None
    defaults: Mapping[str, object] = field(default_factory=dict)
    clusters: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


def load_config_file(path: Path) -> ConfigFile:
    """Read and shape-check a config file; any problem is a one-line :class:`UsageError`."""
    import yaml  # only a run with --config pays for it

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read config file {path}: {error.strerror or error}") from None
    try:
        loaded: Any = safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"config file {path} is not valid YAML{where}") from None
    if loaded is None:
        return ConfigFile(path=path)
    if not isinstance(loaded, dict):
        raise UsageError(f"config file {path} must be a mapping with 'defaults' and/or 'clusters'")
    unknown = sorted(set(loaded) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise UsageError(f"config file {path}: unknown top-level key {unknown[0]!r} (allowed: defaults, clusters)")
    # Only an absent or empty (null) section means "nothing": ``clusters: []`` is a mistake, not a default.
    defaults = {} if loaded.get("defaults") is None else loaded["defaults"]
    if not isinstance(defaults, dict):
        raise UsageError(f"config file {path}: 'defaults' must be a mapping of option names to values")
    clusters = {} if loaded.get("clusters") is None else loaded["clusters"]
    if not isinstance(clusters, dict) or not all(isinstance(values, dict | None) for values in clusters.values()):
        raise UsageError(f"config file {path}: 'clusters' must map each cluster name to option values")
    return ConfigFile(
        path=path,
        defaults={str(key): value for key, value in defaults.items()},
        clusters={
            str(name): {str(key): value for key, value in (values or {}).items()} for name, values in clusters.items()
        },
    )


def with_context_settings(
    config: ConfigFile, settings: Mapping[str, ContextSettings], options: Iterable[Option[Any]]
) -> ConfigFile:
    """``config`` with each cluster's context settings laid under it (``settings``: cluster name → its
    context's extension).

    Only per-cluster options are taken from a context's file, and only those a loaded plugin declares
    (the file may have been written with other plugins installed); their values are checked here, so a
    bad one names the kubeconfig context. An explicit ``--config`` value wins: a key in its
    ``clusters.<name>`` or its ``defaults`` hides the context's.

    :raises UsageError: the extension is malformed, or its file is missing, unreadable or invalid.
    """
    by_name = {option.name: option for option in options if option.per_cluster}
    loaded: dict[Path, ConfigFile] = {}
    clusters = {name: dict(values) for name, values in config.clusters.items()}
    for cluster, context in settings.items():
        if context.problem:
            raise UsageError(context.problem)
        if context.config not in loaded:
            try:
                loaded[context.config] = load_config_file(context.config)
            except UsageError as error:
                raise UsageError(
                    f"{context.describe()} names a settings file: {error}; start that sandbox again "
                    "(kibertas-async sandbox up), fix the extension, or run with --ignore-kubeconfig-settings"
                ) from None
        source = loaded[context.config]
        if context.section not in source.clusters and not source.defaults:
            raise UsageError(
                f"{context.describe()}: settings file {context.config} has no clusters.{context.section}; "
                "fix the extension's 'cluster', or run with --ignore-kubeconfig-settings"
            )
        values = {**source.defaults, **source.clusters.get(context.section, {})}
        for key, value in values.items():
            option = by_name.get(key)
            if option is None or key in config.defaults or key in config.clusters.get(cluster, {}):
                continue
            try:
                option.convert(value)
            except ValueError as error:
                shown = "<secret>" if option.secret else repr(value)
                raise UsageError(
                    f"invalid value {shown} for {option.flag} (from {context.config}, applied by "
                    f"{context.describe()}): {error}"
                ) from None
            clusters.setdefault(cluster, {})[key] = value
    return ConfigFile(path=config.path, defaults=config.defaults, clusters=clusters)
