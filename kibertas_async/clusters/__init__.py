"""Which clusters a run targets: kubeconfig contexts, or the Pod's own service account."""

from kibertas_async.clusters.selection import IN_CLUSTER, KubeconfigContexts, read_kubeconfig, select_clusters

__all__ = ["IN_CLUSTER", "KubeconfigContexts", "read_kubeconfig", "select_clusters"]
