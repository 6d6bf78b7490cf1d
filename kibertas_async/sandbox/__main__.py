"""``python -m kibertas_async.sandbox``: the ``sandbox`` command without the rest of the CLI."""

from __future__ import annotations

import argparse
import sys

from kibertas_async.errors import UsageError
from kibertas_async.sandbox.cli import add_sandbox_command


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` as ``sandbox ...`` arguments and run the chosen subcommand."""
    parser = argparse.ArgumentParser(prog="python -m kibertas_async.sandbox")
    add_sandbox_command(parser.add_subparsers(required=True))
    args = parser.parse_args(["sandbox", *(sys.argv[1:] if argv is None else argv)])
    try:
        exit_code: int = args.handler(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
