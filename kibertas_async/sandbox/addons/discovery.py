"""Add-ons contributed by plugins through ``kibertas_async_register_sandbox_addons``.

The sandbox knows no check by name: a check plugin ships the add-on its check is tested against, and
registers it like everything else, through the plugin contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kibertas_async.sandbox.addons import AddonContext, SandboxAddon
from kibertas_async.sandbox.addons.kwok import KwokAddon

RUN_CONFIG_NAME = "kibertas-async.yaml"
"""The run config file ``sandbox up`` writes into its state directory."""


def plugin_addons() -> tuple[SandboxAddon, ...]:
    """Every add-on the installed plugins register, in plugin load order."""
    from kibertas_async.plugins import create_plugin_manager
    from kibertas_async.sandbox import hookspecs

    registry = create_plugin_manager(specs=[hookspecs])
    found: list[SandboxAddon] = []
    seen: set[str] = set()
    for addons in reversed(registry.hook.kibertas_async_register_sandbox_addons()):
        for addon in addons:
            if addon.name in seen or addon.name == KwokAddon.name:
                continue
            seen.add(addon.name)
            found.append(addon)
    return tuple(found)


def default_addons() -> tuple[SandboxAddon, ...]:
    """kwok (nodes) first, then whatever the installed check plugins need."""
    return (KwokAddon(), *plugin_addons())


def optional_addons() -> tuple[SandboxAddon, ...]:
    """The add-ons a sandbox starts only when asked (``--addons``): the node agent, which runs pods with
    podman, and Argo CD (with Redis and a git daemon), which syncs Applications from a local repository."""
    from kibertas_async.sandbox.argocd import ArgoCdAddon
    from kibertas_async.sandbox.nodeagent import NodeAgentAddon

    return (NodeAgentAddon(), ArgoCdAddon())


def select_addons(names: Sequence[str]) -> tuple[SandboxAddon, ...]:
    """The add-ons called ``names`` (``kwok``, the names the installed plugins register, and the optional
    ``node-agent`` and ``argocd``), in the order :func:`default_addons` then :func:`optional_addons` have
    them, so one that needs another (external-dns after bind9) still follows it.

    ``["kwok"]`` alone loads no plugin: a control plane with nodes and nothing else starts in seconds.

    :raises UsageError: a name no add-on has; the message lists the ones there are.
    """
    from kibertas_async.errors import UsageError

    wanted = list(dict.fromkeys(names))
    available = (KwokAddon(),) if set(wanted) <= {KwokAddon.name} else (*default_addons(), *optional_addons())
    unknown = [name for name in wanted if name not in {addon.name for addon in available}]
    if unknown:
        known = ", ".join(addon.name for addon in default_addons())
        optional = ", ".join(addon.name for addon in optional_addons())
        raise UsageError(
            f"no sandbox add-on called {', '.join(unknown)}; the installed ones are {known} (and, only when "
            f"named, {optional})"
        )
    return tuple(addon for addon in available if addon.name in wanted)


def cluster_settings(addon: SandboxAddon, context: AddonContext) -> Mapping[str, object]:
    """The option values an add-on suggests for its cluster (none if it defines no ``cluster_settings``)."""
    settings = getattr(addon, "cluster_settings", None)
    if settings is None:
        return {}
    values: Mapping[str, object] = settings(context)
    return values


def write_run_config(path: Path, per_cluster: Mapping[str, Mapping[str, object]]) -> None:
    """Write a ``--config`` file with each cluster's add-on settings under ``clusters.<name>``."""
    import yaml

    document: dict[str, Any] = {"clusters": {name: dict(values) for name, values in per_cluster.items()}}
    header = "# Written by `kibertas-async sandbox up`: option values for the sandbox's add-ons.\n"
    path.write_text(header + yaml.safe_dump(document, sort_keys=True), encoding="utf-8")


def collect_settings(contexts: Sequence[tuple[SandboxAddon, AddonContext]]) -> dict[str, dict[str, object]]:
    """Merge every add-on's settings per cluster."""
    merged: dict[str, dict[str, object]] = {}
    for addon, context in contexts:
        merged.setdefault(context.cluster_name, {}).update(cluster_settings(addon, context))
    return merged
