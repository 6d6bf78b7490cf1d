"""Local Kubernetes clusters for tests, demos and plugin authors, built from Go modules."""
