"""kibertas-async-ingress: the ``ingress`` check and the sandbox add-ons it is tested against.

The check deploys a small web server behind a Service and an Ingress, then proves, end to end, that the
cluster's ingress controller gives the Ingress a load-balancer address, that external-dns publishes the
host with that address, and that ``GET <scheme>://<host>/`` answers through it. Installing this
distribution registers :mod:`kibertas_async_ingress.plugin` under the ``kibertas_async`` entry-point group.
"""

__version__ = "0.1.0"
