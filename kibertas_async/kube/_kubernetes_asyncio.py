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
    ``kubernetes_asyncio.config`` module, importing as little of kubernetes_asyncio as they need."""
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
    from kubernetes_asyncio.client import api_client, configuration

    client = sys.modules["kubernetes_asyncio.client"]
    if isinstance(client, _StandInPackage):
        # What kubernetes_asyncio.config imports from its client package (`from ... import ApiClient`).
        client.__dict__.setdefault("Configuration", configuration.Configuration)
        client.__dict__.setdefault("ApiClient", api_client.ApiClient)
    from kubernetes_asyncio import config

    return configuration.Configuration, api_client.ApiClient, config
