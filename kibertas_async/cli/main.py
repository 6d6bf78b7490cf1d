"""Entry point: parse the command line, report bad input as one line with exit code 2.

Only the standard library is imported at module level, so ``--help`` and ``--version`` stay fast;
``run`` and ``list`` load the plugins, and a check's heavy clients load only when it runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kibertas_async import __version__
from kibertas_async.errors import KibertasError, PluginError, UsageError

if TYPE_CHECKING:
    from kibertas_async.plugins import Registry

PROG = "kibertas-async"
DESCRIPTION = (
    "Prove that a Kubernetes cluster's add-ons really work: every check runs end to end, "
    "concurrently, on one cluster or many, and reports OK/NG per cluster and check."
)
EPILOG = """\
examples:
  kibertas-async list                                  every check the installed plugins provide
  kibertas-async run --all --clusters old,new          every check on two kubeconfig contexts
  kibertas-async run ingress cert-manager --dry-run    what would run, touching nothing
  kibertas-async compare old.json new.json             blue/green: regressions of new against old
  kibertas-async sandbox up                            local clusters to try it on
  kibertas-async new-check my-addon                    a plugin with one check, to make your own

exit codes: 0 all passed, 1 a check failed, 2 bad input (nothing was run), 130/143 interrupted.
"""
COMMANDS = ("run", "list", "compare", "cleanup", "rbac", "report", "sandbox", "new-check")


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line and exit 2 through :class:`UsageError`."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser(registry: Registry | None = None) -> argparse.ArgumentParser:
    """The whole parser; ``registry`` (loaded plugins) adds their options to ``run``."""
    parser = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_Parser
    )
    from kibertas_async.cli import commands as command_modules
    from kibertas_async.newcheck.cli import add_new_check_command
    from kibertas_async.rbac.cli import add_rbac_command

    command_modules.add_run_command(commands, registry)
    command_modules.add_list_command(commands)
    command_modules.add_compare_command(commands)
    command_modules.add_cleanup_command(commands)
    add_rbac_command(commands)
    command_modules.add_report_command(commands, registry)
    _add_sandbox_command(commands)
    add_new_check_command(commands)
    return parser


def _add_sandbox_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    try:
        from kibertas_async.sandbox.cli import add_sandbox_command
    except ImportError:  # the sandbox is optional to the engine
        return
    add_sandbox_command(commands)


class _Terminated(BaseException):
    """SIGTERM before the engine listens for it itself: nothing of ours exists yet. A BaseException, as
    KeyboardInterrupt is, so no ``except Exception`` on the way swallows it."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns (and, as a console script, exits with) the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Until the engine listens for signals itself (it does before the first check starts), SIGTERM
    # ends the process the way SIGINT does: one line and its exit code (143), not a bare kill.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        code = _guarded_main(args_list)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    if argv is None:
        sys.exit(code)
    return code


def _guarded_main(args_list: list[str]) -> int:
    try:
        code = _main(args_list)
    except UsageError as error:
        print(f"{PROG}: error: {_redacted(error)}", file=sys.stderr)
        code = 2
    except PluginError as error:
        print(f"{PROG}: plugin error: {_redacted(error)}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        code = 130
    except _Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        code = 143
    except KibertasError as error:
        print(f"{PROG}: error: {_redacted(error)}", file=sys.stderr)
        code = 1
    return code


def _redacted(error: BaseException) -> str:
    """The error's one line, with the secrets of the environment and of any run still alive blanked."""
    from kibertas_async.events import EVENT_REDACTION

    EVENT_REDACTION.read_environment(os.environ)
    return EVENT_REDACTION.text(" ".join(str(error).split()))


def _main(argv: list[str]) -> int:
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    registry = None
    if command in ("run", "list", "rbac", "report"):
        from kibertas_async.cli.commands import load_registry

        registry = load_registry(argv, os.environ)
    parser = build_parser(registry)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.registry = registry
    handler = args.handler
    result: int = handler(args)
    return result
