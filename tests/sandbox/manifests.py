"""Request bodies for the sandbox tests."""

from __future__ import annotations

from typing import Any


def body(manifest: dict[str, Any]) -> Any:
    """``manifest`` as a request body.

    kubernetes_asyncio sends a plain dict as it is, but its type hints name the model classes
    (``V1ConfigMap``, ...); manifests read better as dicts, so the type is let go here, once.
    """
    return manifest
