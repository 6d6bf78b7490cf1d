"""``kibertas-async rbac``: print the ServiceAccount and least-privilege roles the selected checks need."""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING

from kibertas_async.errors import UsageError
from kibertas_async.rbac import FORMATS

if TYPE_CHECKING:
    from kibertas_async.cli.commands import SubParsers
    from kibertas_async.plugins import Registry

DEFAULT_NAMESPACE = "ops"
DEFAULT_SERVICE_ACCOUNT = "kibertas-async"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def add_rbac_command(commands: SubParsers) -> None:
    """``rbac``: the manifests, on stdout."""
    from kibertas_async.cli.commands import _add_plugin_flags, _one_of

    parser = commands.add_parser(
        "rbac",
        help="print least-privilege RBAC for checks",
        description=(
            "Print a ServiceAccount, a ClusterRole and a ClusterRoleBinding (and a Role and RoleBinding per "
            "fixed namespace a check declares) granting exactly what the selected checks declare, plus what "
            "the engine needs: its throwaway namespaces and GET /version. Rules are merged and sorted, so the "
            "output only changes when a declaration does. Apply it with kubectl apply -f -."
        ),
        epilog="exit codes: 0 printed, 1 a plugin failed to load (the rest printed), 2 bad input "
        "(unknown check, bad name or format).",
    )
    parser.add_argument("checks", nargs="*", metavar="CHECK", help="checks to grant (see 'kibertas-async list')")
    parser.add_argument("--all", action="store_true", help="every installed check")
    parser.add_argument("--tags", default=None, metavar="T1,T2", help="the checks carrying any of these tags")
    parser.add_argument("--exclude", default=None, metavar="C1,C2", help="leave these checks out")
    parser.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        metavar="NS",
        help=f"namespace of the ServiceAccount (default {DEFAULT_NAMESPACE})",
    )
    parser.add_argument(
        "--service-account",
        default=DEFAULT_SERVICE_ACCOUNT,
        metavar="NAME",
        help=f"name of the ServiceAccount, the roles and the bindings (default {DEFAULT_SERVICE_ACCOUNT})",
    )
    parser.add_argument(
        "--format",
        type=_one_of(FORMATS, "--format"),
        choices=FORMATS,
        default="yaml",
        help="yaml (documents separated by ---) or json (a v1 List); default yaml",
    )
    _add_plugin_flags(parser)
    parser.set_defaults(handler=rbac_command)


def rbac_command(args: argparse.Namespace) -> int:
    """Validate the names, select the checks, print the manifests."""
    from kibertas_async.cli.commands import _select_checks
    from kibertas_async.rbac._manifests import rbac_manifests, render
    from kibertas_async.rbac._rules import rbac_rules

    registry: Registry = args.registry
    if not _DNS_LABEL.fullmatch(args.namespace):
        raise UsageError(
            f"--namespace {args.namespace!r} is not a namespace name (lower-case letters, digits and '-', "
            "at most 63, starting and ending with a letter or digit)"
        )
    if not _DNS_SUBDOMAIN.fullmatch(args.service_account):
        raise UsageError(
            f"--service-account {args.service_account!r} is not a ServiceAccount name (lower-case letters, "
            "digits, '-' and '.', at most 253, starting and ending with a letter or digit)"
        )
    checks = _select_checks(args, registry)
    documents = rbac_manifests(
        rbac_rules(checks),
        [check.name for check in checks],
        namespace=args.namespace,
        service_account=args.service_account,
    )
    sys.stdout.write(render(documents, args.format))
    # A plugin that did not load may hold a selected check: its rules would be missing.
    for problem in registry.problems:
        print(problem.describe(), file=sys.stderr)
    return 1 if registry.problems else 0
