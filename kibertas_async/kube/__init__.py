"""Kubernetes access for checks: resources by path, informers and watch-based waits, plain-dict objects.

``kubernetes_asyncio`` is imported only by :mod:`kibertas_async.kube.client`, and only when a cluster
is connected, so listing checks and ``--help`` never pay for it.
"""

from kibertas_async.kube.client import ClusterTarget, KubeClient, KubeObject, connect
from kibertas_async.kube.errors import ClusterUnreachable, KubeApiError, KubeUnavailable
from kibertas_async.kube.informer import Change, Informer, object_key
from kibertas_async.kube.resources import Resource

__all__ = [
    "Change",
    "ClusterTarget",
    "ClusterUnreachable",
    "Informer",
    "KubeApiError",
    "KubeClient",
    "KubeObject",
    "KubeUnavailable",
    "Resource",
    "connect",
    "object_key",
]
