"""Pinned versions of everything the sandbox builds from the Go module proxy.

Kubernetes is a parameter (old and new side by side is the users' real scenario); etcd and kwok are
pinned here because any recent release of them serves every Kubernetes version we support.
"""

from __future__ import annotations

import re

from kibertas_async.errors import UsageError

DEFAULT_KUBERNETES_VERSION = "1.36.3"
"""The Kubernetes release built and started when no version is given.

1.37 pulls modules that need a newer Go than the machines have; 1.36 is the newest that builds with Go 1.26.
"""

ETCD_VERSION = "3.6.16"
"""etcd server release; 1.36 apiservers are tested against etcd 3.6."""

KWOK_VERSION = "0.7.0"
"""kwok release; 0.7.0 has built-in node and pod stages (0.8.0 needs Stage documents in ``--config``)."""

_KUBERNETES_VERSION = re.compile(r"v?(?P<major>1)\.(?P<minor>\d+)\.(?P<patch>\d+)")


def normalize_kubernetes_version(version: str) -> str:
    """Return ``version`` as ``MAJOR.MINOR.PATCH`` (without the leading ``v``).

    :raises UsageError: when it is not a full Kubernetes 1.x release number.
    """
    match = _KUBERNETES_VERSION.fullmatch(version.strip())
    if match is None:
        raise UsageError(
            f"--kubernetes-version {version!r} is not a Kubernetes release like 1.36.3; give MAJOR.MINOR.PATCH"
        )
    return f"{match['major']}.{match['minor']}.{match['patch']}"


def staging_module_version(kubernetes_version: str) -> str:
    """Return the version of the ``k8s.io/*`` staging modules released with ``kubernetes_version``.

    Kubernetes 1.36.3 ships k8s.io/api, k8s.io/client-go, ... as v0.36.3.
    """
    _major, minor, patch = normalize_kubernetes_version(kubernetes_version).split(".")
    return f"v0.{minor}.{patch}"
