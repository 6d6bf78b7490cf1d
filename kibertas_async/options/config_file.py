"""The ``--config`` file: option defaults and per-cluster overrides, in YAML (JSON is YAML too).

Example::

    defaults:
      ingress-class: alb
    clusters:
      old:
        ingress-hostname: check.old.example.com
      new:
        ingress-hostname: check.new.example.com
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kibertas_async.errors import UsageError

_TOP_LEVEL_KEYS = ("defaults", "clusters")


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
        loaded: Any = yaml.safe_load(text)
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
