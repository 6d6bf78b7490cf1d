"""Import the four modules of kubernetes_asyncio the tool uses, without the ~1,000 it does not.

``import kubernetes_asyncio`` runs its package ``__init__``, which imports every API class and every
model (``kubernetes_asyncio.client.models``, over 900 modules): about 0.2 s of CPU and 35 MB of memory per
process, for code the tool never calls. kibertas-async needs only ``client.configuration``,
``client.api_client`` (with ``client.rest``) and ``config`` (kubeconfig and in-cluster credentials:
exec plugins, token refresh, certificates); it reads responses as JSON itself (``_preload_content=False``),
so no model is ever built.

:func:`load` therefore puts empty stand-in package objects for ``kubernetes_asyncio``,
``kubernetes_asyncio.client`` and ``kubernetes_asyncio.client.models`` into ``sys.modules`` (each with the
real package's ``__path__``, so its submodules import as usual) and imports only those modules. Anything
else asked of a stand-in package (``kubernetes_asyncio.client.CoreV1Api``, a model class) imports the real
package on the spot, which reuses the modules already loaded, so classes keep their identity. If the real
package is already imported (a test that uses kubernetes_asyncio's own API classes), it is used as it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient, Configuration
    from kubernetes_asyncio.client.configuration import Configuration as ClientConfiguration

_PACKAGES = ("kubernetes_asyncio", "kubernetes_asyncio.client", "kubernetes_asyncio.client.models")


class _StandInPackage(types.ModuleType):
    """A package whose ``__init__`` has not run; an attribute it lacks loads the real package."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or _is_submodule(self, name):
            # A submodule is left to the import system (``from package import submodule`` asks first).
            raise AttributeError(name)
        return getattr(_real(self.__name__), name)


def _is_submodule(package: types.ModuleType, name: str) -> bool:
    return any(
        os.path.exists(os.path.join(path, name + ".py")) or os.path.isdir(os.path.join(path, name))
        for path in package.__path__
    )


def _real(name: str) -> types.ModuleType:
    """Replace the stand-in packages by the real ones (their ``__init__`` run at last); return ``name``'s."""
    for package in _PACKAGES:
        if isinstance(sys.modules.get(package), _StandInPackage):
            del sys.modules[package]
    return importlib.import_module(name)


def load() -> tuple[type[Configuration], type[ApiClient], types.ModuleType]:
    """``(Configuration, ApiClient, config)``: the client configuration class, the API client class and the
    ``kubernetes_asyncio.config`` module, importing as little of kubernetes_asyncio as they need (and
    aiohttp, which they import, without reading the CA bundle twice: :mod:`kibertas_async.kube._aiohttp`)."""
    from kibertas_async.kube._aiohttp import import_aiohttp

    import_aiohttp()
    if "kubernetes_asyncio" not in sys.modules:
        spec = importlib.util.find_spec("kubernetes_asyncio")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("kubernetes_asyncio is not installed", name="kubernetes_asyncio")
        root = next(iter(spec.submodule_search_locations))
        parent: types.ModuleType | None = None
        for package in _PACKAGES:
            module = _StandInPackage(package)
            module.__path__ = [root + package.removeprefix("kubernetes_asyncio").replace(".", "/")]
            module.__package__ = package
            sys.modules[package] = module
            if parent is not None:
                setattr(parent, package.rsplit(".", 1)[1], module)
            parent = module
    configuration = _import_configuration()
    from kubernetes_asyncio.client import api_client

    client = sys.modules["kubernetes_asyncio.client"]
    if isinstance(client, _StandInPackage):
        # What kubernetes_asyncio.config imports from its client package (`from ... import ApiClient`).
        client.__dict__.setdefault("Configuration", configuration.Configuration)
        client.__dict__.setdefault("ApiClient", api_client.ApiClient)
    from kubernetes_asyncio import config

    return configuration.Configuration, api_client.ApiClient, config


class _ModuleOnFirstUse:
    """Stands for a module in one other module's namespace; its first attribute read imports the real one."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


def _import_configuration() -> types.ModuleType:
    """``kubernetes_asyncio.client.configuration``, without importing urllib3 for it.

    The module does ``import urllib3`` (28 modules, ~45 ms of CPU) for one call, ``urllib3.util.make_headers``
    in ``get_basic_auth_token`` (a kubeconfig user with a username and password); kubernetes_asyncio's
    requests go through aiohttp. So while it is first imported, ``urllib3`` in ``sys.modules`` is a
    placeholder, taken out again right after (whoever imports urllib3 later gets the real package), and the
    module's own ``urllib3`` name is a :class:`_ModuleOnFirstUse` that imports urllib3 when that call comes.
    """
    name = "kubernetes_asyncio.client.configuration"
    if name in sys.modules:
        return sys.modules[name]
    if "urllib3" in sys.modules:
        return importlib.import_module(name)
    placeholder = types.ModuleType("urllib3")
    sys.modules["urllib3"] = placeholder
    try:
        module = importlib.import_module(name)
    finally:
        if sys.modules.get("urllib3") is placeholder:
            del sys.modules["urllib3"]
    if getattr(module, "urllib3", None) is placeholder:
        module.urllib3 = _ModuleOnFirstUse("urllib3")  # type: ignore[attr-defined]
    return module


async def load_kubeconfig(configuration: ClientConfiguration, kubeconfig: str | None, context: str | None) -> None:
    """Set ``configuration`` from context ``context`` of the kubeconfig files ``kubeconfig``
    (``os.pathsep``-separated; ``None``: ``$KUBECONFIG`` or ``~/.kube/config``, as kubernetes_asyncio does).

    What kubernetes_asyncio's ``load_kube_config(..., persist_config=False)`` does, but each file is parsed
    by :func:`~kibertas_async.clusters.kubeconfig_file.load_kubeconfig_document` (libyaml, once per run:
    the cluster selection has parsed it already) instead of again by PyYAML's pure-Python parser, ~50 ms
    of CPU for a one-cluster sandbox kubeconfig (its certificates are long base64 lines).

    Each file's document is deep-copied before kubernetes_asyncio sees it: its loader writes refreshed
    credentials into the dictionaries, and the parsed documents are shared.
    """
    import copy
    from pathlib import Path

    from kibertas_async.clusters.kubeconfig_file import load_kubeconfig_document

    _configuration, _api_client, config = load()
    kube_config = config.kube_config

    class _ParsedOnceMerger(kube_config.KubeConfigMerger):  # type: ignore[misc,name-defined]
        def load_config(self: Any, path: str) -> None:
            # KubeConfigMerger.load_config, with the parsed document instead of `yaml.safe_load(open(path))`.
            loaded = copy.deepcopy(load_kubeconfig_document(Path(path)))
            node = self.config_merged
            if node is None:
                merged = copy.deepcopy(loaded)
                for item in ("clusters", "contexts", "users"):
                    merged[item] = []
                node = self.config_merged = kube_config.ConfigNode(path, merged, path)
            for item in ("clusters", "contexts", "users"):
                self._merge(item, loaded.get(item, []) or [], path)
            if "current-context" in loaded:
                node.value["current-context"] = loaded["current-context"]
            self.config_files[path] = loaded

    merger = _ParsedOnceMerger(kube_config.KUBE_CONFIG_DEFAULT_LOCATION if kubeconfig is None else kubeconfig)
    loader = kube_config.KubeConfigLoader(config_dict=merger.config, config_base_path=None, active_context=context)
    await loader.load_and_set(configuration)
