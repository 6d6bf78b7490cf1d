"""kibertas-async plugin: the ``cert-manager`` check and the sandbox add-on it is tested against."""

__version__ = "0.1.0"
