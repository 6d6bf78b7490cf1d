"""kibertas-async-cluster-autoscaler: prove that a cluster really gets a new node when pods need one.

Installing this distribution registers the plugin :mod:`kibertas_async_cluster_autoscaler.plugin` under
the ``kibertas_async`` entry-point group. It provides two checks of one family, ``cluster-autoscaler``
(node groups selected by a node label) and ``karpenter`` (nodes of a Karpenter NodePool, reporting the
NodeClaim), and the sandbox add-on they are tested against (:mod:`.sandbox`).
"""

__version__ = "0.1.0"
