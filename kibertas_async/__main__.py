"""``python -m kibertas_async`` is the ``kibertas-async`` command."""

from kibertas_async.cli import main

main()
