"""Resolving ``--clusters`` against the kubeconfig before anything runs, with one-line errors.

``--clusters old,new`` names kubeconfig contexts; ``name=context`` gives a context (an EKS ARN, say) a
short name for reports. With no ``--clusters``: the current context, or, inside a Pod with no
kubeconfig, the Pod's service account (named by ``CLUSTER_NAME``, else ``in-cluster``).

A context may carry where its option values are (:data:`SETTINGS_EXTENSION`, a kubeconfig ``extensions``
entry; ``sandbox up`` writes one on each of its contexts), read by :func:`context_settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kibertas_async.errors import UsageError
from kibertas_async.kube.client import ClusterTarget

IN_CLUSTER = "in-cluster"
CLUSTERS_ENV = "KIBERTAS_ASYNC_CLUSTERS"
"""The environment variable that stands for ``--clusters`` when the flag is not given."""
SETTINGS_EXTENSION = "kibertas-async.io/settings"
"""The name of the kubeconfig context extension that says where this context's option values are::

    contexts:
    - name: sandbox-1
      context:
        cluster: sandbox-1
        user: ...
        extensions:
        - name: kibertas-async.io/settings
          extension:
            config: /home/me/.local/state/kibertas-async/sandbox/kibertas-async.yaml
            cluster: sandbox-1     # the config file's section; default: the context's name

``run`` applies that file's ``defaults`` and ``clusters.<cluster>`` to the targets using the context.
A relative ``config`` is relative to the kubeconfig file, as kubectl reads relative paths.
"""
_SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


@dataclass(frozen=True)
class ContextSettings:
    """A context's :data:`SETTINGS_EXTENSION`: which config file, and which section of it."""

    context: str
    config: Path
    section: str
    kubeconfig: Path
    """The kubeconfig file that defines the context (for messages)."""
    problem: str = ""
    """Why the extension cannot be used (malformed); empty when it can."""

    def describe(self) -> str:
        """``kubeconfig context C (extension kibertas-async.io/settings in K)``."""
        return f"kubeconfig context {self.context} (extension {SETTINGS_EXTENSION} in {self.kubeconfig})"


@dataclass
class KubeconfigContexts:
    """The contexts found in one or more kubeconfig files (merged as kubectl merges them)."""

    paths: list[Path]
    contexts: dict[str, str] = field(default_factory=dict)
    """Context name → the cluster's server URL (or ``?``)."""
    current: str | None = None
    settings: dict[str, ContextSettings] = field(default_factory=dict)
    """Context name → its :data:`SETTINGS_EXTENSION`, for the contexts that carry one."""


def split_cluster_list(value: str, *, source: str) -> list[str]:
    """``a,b,old=arn:...`` as its entries; an empty value or an empty entry (``a,,b``) is an error,
    not "the current context": a typo must not send the checks to another cluster."""
    from kibertas_async.options.option import split_names

    hint = "; name kubeconfig contexts (comma-separated), or leave it out for the current context"
    return split_names(value, source=source, hint=hint)


def kubeconfig_paths(explicit: str | None, environ: Mapping[str, str]) -> list[Path]:
    """``--kubeconfig``, else every file of ``KUBECONFIG``, else ``~/.kube/config``.

    An empty ``--kubeconfig`` (or one with an empty path in it) is an error; so is a ``KUBECONFIG`` that
    is set but names no file (``:``). Empty entries of a ``KUBECONFIG`` that names files are skipped, as
    kubectl skips them (``KUBECONFIG=$KUBECONFIG:new.yaml`` with ``KUBECONFIG`` unset before).
    """
    if explicit is not None:
        parts = explicit.split(os.pathsep)
        if not explicit.strip() or any(not part.strip() for part in parts):
            raise UsageError(f"--kubeconfig {explicit!r} has an empty path; give kubeconfig files joined by ':'")
        return [Path(part).expanduser() for part in parts]
    value = environ.get("KUBECONFIG", "")
    if value:
        parts = [part for part in value.split(os.pathsep) if part.strip()]
        if not parts:
            raise UsageError(f"KUBECONFIG={value!r} names no file; unset it, or give kubeconfig files joined by ':'")
        return [Path(part).expanduser() for part in parts]
    return [Path("~/.kube/config").expanduser()]


def read_kubeconfig(paths: list[Path], *, required: bool) -> KubeconfigContexts:
    """Read contexts from the files; the first file defining a name wins, as with kubectl."""
    import yaml

    from kibertas_async.clusters.kubeconfig_file import load_kubeconfig_document

    found = KubeconfigContexts(paths=paths)
    for path in paths:
        if not path.exists():
            if required:
                raise UsageError(f"kubeconfig {path} does not exist (check --kubeconfig or KUBECONFIG)")
            continue
        try:
            loaded: Any = load_kubeconfig_document(path)
        except OSError as error:
            raise UsageError(f"cannot read kubeconfig {path}: {error.strerror or error}") from None
        except (yaml.YAMLError, UnicodeDecodeError):
            raise UsageError(f"kubeconfig {path} is not valid YAML") from None
        if loaded is None:
            continue
        if not isinstance(loaded, dict):
            raise UsageError(f"kubeconfig {path} is not a kubeconfig (expected a mapping)")
        for key in ("clusters", "contexts"):
            if not isinstance(loaded.get(key) or [], list):
                raise UsageError(f"kubeconfig {path} is not a kubeconfig ('{key}' must be a list)")
        servers = {
            entry.get("name"): (entry.get("cluster") or {}).get("server", "?")
            for entry in loaded.get("clusters") or []
            if isinstance(entry, dict) and isinstance(entry.get("cluster") or {}, dict)
        }
        for entry in loaded.get("contexts") or []:
            if not isinstance(entry, dict) or not entry.get("name"):
                continue
            context = entry.get("context") or {}
            cluster = context.get("cluster") if isinstance(context, dict) else None
            name = str(entry["name"])
            if name in found.contexts:
                continue
            found.contexts[name] = str(servers.get(cluster, "?"))
            settings = _settings_extension(context, name, path) if isinstance(context, dict) else None
            if settings is not None:
                found.settings[name] = settings
        if found.current is None and loaded.get("current-context"):
            found.current = str(loaded["current-context"])
    return found


def _settings_extension(context: dict[str, Any], name: str, path: Path) -> ContextSettings | None:
    """The context's :data:`SETTINGS_EXTENSION`; ``None`` when it has none. A malformed one is kept with
    its problem, which is an error only for a run that applies it (not with --ignore-kubeconfig-settings)."""
    extensions = context.get("extensions") or []
    if not isinstance(extensions, list):
        return None  # not ours to judge: kubectl refuses such a kubeconfig itself
    for item in extensions:
        if not isinstance(item, dict) or item.get("name") != SETTINGS_EXTENSION:
            continue
        value = item.get("extension")
        config = value.get("config") if isinstance(value, dict) else None
        section = value.get("cluster", name) if isinstance(value, dict) else None
        if not isinstance(config, str) or not config.strip() or not isinstance(section, str) or not section:
            problem = (
                f"kubeconfig {path}: context {name!r} has a {SETTINGS_EXTENSION} extension without a 'config' "
                "path (and an optional 'cluster' name); fix it, or run with --ignore-kubeconfig-settings"
            )
            return ContextSettings(name, Path(), name, path, problem)
        config_path = Path(config).expanduser()
        if not config_path.is_absolute():
            config_path = path.parent / config_path
        return ContextSettings(name, config_path, section, path)
    return None


def context_settings(
    targets: list[ClusterTarget], *, kubeconfig: str | None, environ: Mapping[str, str]
) -> dict[str, ContextSettings]:
    """Cluster name → the settings extension of its context, for the targets whose context has one."""
    with_context = [target for target in targets if target.context is not None and not target.in_cluster]
    if not with_context:
        return {}
    found = read_kubeconfig(kubeconfig_paths(kubeconfig, environ), required=False)
    return {
        target.name: found.settings[target.context]
        for target in with_context
        if target.context is not None and target.context in found.settings
    }


def in_pod(environ: Mapping[str, str]) -> bool:
    """Whether we run inside a Kubernetes Pod with a service-account token."""
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and _SERVICE_ACCOUNT_TOKEN.exists()


def select_clusters(requested: list[str], *, kubeconfig: str | None, environ: Mapping[str, str]) -> list[ClusterTarget]:
    """Turn ``--clusters`` (possibly empty) into targets, or raise a :class:`UsageError` saying why not."""
    paths = kubeconfig_paths(kubeconfig, environ)
    explicit_files = kubeconfig is not None or bool(environ.get("KUBECONFIG"))
    joined = os.pathsep.join(str(path) for path in paths)
    if not requested:
        default = read_kubeconfig(paths, required=explicit_files)
        if default.current:
            if default.current not in default.contexts:
                raise UsageError(f"current-context {default.current!r} is not defined in {joined}")
            return [ClusterTarget(name=default.current, context=default.current, kubeconfig=joined)]
        if in_pod(environ):
            return [ClusterTarget(name=environ.get("CLUSTER_NAME") or IN_CLUSTER, in_cluster=True)]
        raise UsageError(
            f"no cluster to check: {joined} has no current context and this is not a Pod; "
            "name contexts with --clusters (kubectl config get-contexts lists them)"
        )
    targets: list[ClusterTarget] = []
    available: KubeconfigContexts | None = None
    for item in requested:
        name, sep, context = item.partition("=")
        name, context = name.strip(), (context.strip() if sep else name.strip())
        if not name or not context:
            raise UsageError(f"--clusters entry {item!r} is empty; use NAME or NAME=CONTEXT, comma-separated")
        if any(target.name == name for target in targets):
            raise UsageError(f"cluster {name!r} is given twice in --clusters")
        if context == IN_CLUSTER:
            if not in_pod(environ):
                raise UsageError("--clusters in-cluster only works inside a Kubernetes Pod")
            targets.append(ClusterTarget(name=name, in_cluster=True))
            continue
        if available is None:
            available = read_kubeconfig(paths, required=True)
        if context not in available.contexts:
            known = ", ".join(sorted(available.contexts)) or "none"
            raise UsageError(f"unknown context {context!r} in {joined} (available: {known})")
        targets.append(ClusterTarget(name=name, context=context, kubeconfig=joined))
    return targets
