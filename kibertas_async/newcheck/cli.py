"""``kibertas-async new-check NAME``: write a plugin package that works, for an author to make their own."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kibertas_async.newcheck import MAX_NAME_LENGTH, PluginNames, refuse_installed, validate_target, write_plugin

if TYPE_CHECKING:
    from kibertas_async.cli.commands import SubParsers


def add_new_check_command(commands: SubParsers) -> None:
    """``new-check``: a plugin distribution, on disk."""
    parser = commands.add_parser(
        "new-check",
        help="write a new check plugin (a package that passes its own tests)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Write a new plugin distribution kibertas-async-NAME with one check named NAME:\n"
            "pyproject.toml with the kibertas_async entry point, the check module (a ConfigMap written\n"
            "and read back, with one option), a README, and tests that run the check on the local\n"
            "sandbox with the check_runner and nothing_left fixtures. It is the README's example\n"
            "plugin with your names: it passes at once, and is yours to turn into the proof that your\n"
            "add-on works."
        ),
        epilog=(
            "next:\n"
            "  pip install -e DIR      into the environment kibertas-async is installed in\n"
            "  kibertas-async list     shows NAME\n"
            "  pytest DIR/tests        starts the sandbox once and runs the check's tests\n"
            "\n"
            "exit codes: 0 written, 2 bad input (NAME is not a check name or is installed already,\n"
            "DIR exists and is not empty): nothing is written then."
        ),
    )
    parser.add_argument(
        "name",
        metavar="NAME",
        help=(
            f"the check's name: lower-case letters and digits in words joined by '-', at most "
            f"{MAX_NAME_LENGTH} characters (e.g. my-addon); the distribution is kibertas-async-NAME and the "
            "package kibertas_async_NAME (with '_' for '-')"
        ),
    )
    parser.add_argument(
        "--directory",
        type=Path,
        default=None,
        metavar="DIR",
        help="where to write it: a new or empty directory (default ./kibertas-async-NAME)",
    )
    parser.set_defaults(handler=new_check_command)


def new_check_command(args: argparse.Namespace) -> int:
    """Validate everything, then write; print what was written and what to do next."""
    names = PluginNames.for_check(args.name)
    directory: Path = args.directory if args.directory is not None else Path(names.distribution)
    refuse_installed(names)
    validate_target(directory)
    written = write_plugin(names, directory)
    out = sys.stdout
    print(f"wrote {names.distribution} (check {names.check}) in {directory}:", file=out)
    for path in written:
        print(f"  {path.relative_to(directory)}", file=out)
    print(f"next: pip install -e {directory} && kibertas-async list && pytest {directory}/tests", file=out)
    return 0
