"""What the sandbox needs for the check: cert-manager's CRDs, a ClusterIssuer, and an issuer that signs."""
