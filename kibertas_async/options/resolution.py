"""Resolving every option's value, with the documented precedence, before any check starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kibertas_async.errors import UsageError
from kibertas_async.options.config_file import ConfigFile
from kibertas_async.options.option import Option, OptionValues


def check_config_keys(config: ConfigFile, options: Iterable[Option[Any]]) -> None:
    """Every key in the config file must name a registered option (per-cluster ones under clusters)."""
    by_name = {option.name: option for option in options}
    for key in config.defaults:
        if key not in by_name:
            raise UsageError(f"config file {config.path}: unknown option {key!r} under defaults{_hint(key, by_name)}")
    for cluster, values in config.clusters.items():
        for key in values:
            if key not in by_name:
                raise UsageError(
                    f"config file {config.path}: unknown option {key!r} under clusters.{cluster}{_hint(key, by_name)}"
                )
            if not by_name[key].per_cluster:
                raise UsageError(
                    f"config file {config.path}: {key!r} applies to the whole run; "
                    f"set it under defaults, not clusters.{cluster}"
                )


def resolve_options(
    options: Iterable[Option[Any]],
    *,
    flags: Mapping[str, str],
    environ: Mapping[str, str],
    config: ConfigFile,
    cluster: str | None,
) -> OptionValues:
    """The value of each option for ``cluster`` (``None``: run-wide), strongest source first:
    flag, environment, ``clusters.<cluster>`` in the config file, ``defaults`` in it, the default."""
    values: dict[Option[Any], Any] = {}
    sources: dict[Option[Any], str] = {}
    cluster_values = config.clusters.get(cluster, {}) if cluster is not None else {}
    for option in options:
        raw, source = _raw_value(option, flags, environ, config, cluster, cluster_values)
        if source == "default":
            values[option] = option.default
        else:
            try:
                values[option] = option.convert(raw)
            except ValueError as error:
                shown = "<secret>" if option.secret else repr(raw)
                raise UsageError(f"invalid value {shown} for {option.flag} (from {source}): {error}") from None
        sources[option] = source
    _check_requirements(values, sources)
    return OptionValues(values, sources)


def _check_requirements(values: Mapping[Option[Any], Any], sources: Mapping[Option[Any], str]) -> None:
    """Every option that is set has the options it :attr:`~Option.requires` set too."""
    by_name = {option.name: option for option in values}
    for option, value in values.items():
        if not option.requires or not option.is_set(value):
            continue
        for name in option.requires:
            required = by_name.get(name)
            if required is None:
                raise UsageError(f"{option.flag} (from {sources[option]}) needs --{name}, which no loaded plugin has")
            if not required.is_set(values[required]):
                ways = " or ".join([required.flag, *required.env_names])
                raise UsageError(
                    f"{option.flag} is set (from {sources[option]}) but {required.flag} is not; set {ways}"
                )


def _raw_value(
    option: Option[Any],
    flags: Mapping[str, str],
    environ: Mapping[str, str],
    config: ConfigFile,
    cluster: str | None,
    cluster_values: Mapping[str, object],
) -> tuple[object, str]:
    if option.name in flags:
        return flags[option.name], f"flag {option.flag}"
    for name in option.env_names:
        if name in environ:
            return environ[name], f"environment variable {name}"
    if option.per_cluster and option.name in cluster_values:
        return cluster_values[option.name], f"config file clusters.{cluster}"
    if option.name in config.defaults:
        return config.defaults[option.name], "config file defaults"
    return option.default, "default"


def _hint(key: str, by_name: Mapping[str, Option[Any]]) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(by_name), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
