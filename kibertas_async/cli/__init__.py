"""The ``kibertas-async`` command line."""

from kibertas_async.cli.main import main

__all__ = ["main"]
