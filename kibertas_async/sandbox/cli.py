"""``kibertas-async sandbox up|status|down|build``.

Only the standard library is imported at module level: the main CLI imports this module to build its
parser, and ``--help`` must stay fast. The sandbox itself is imported when a subcommand runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kibertas_async.sandbox.addons import SandboxAddon

_SANDBOX_FAILED = 1


def add_sandbox_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sandbox`` command and its subcommands; each sets ``handler(args) -> exit code``."""
    sandbox = subparsers.add_parser(
        "sandbox",
        help="local Kubernetes clusters for tests and demos",
        description="Real Kubernetes control planes (built from source) running as local processes on "
        "127.0.0.1, with kwok nodes. See docs/sandbox.md.",
    )
    sandbox.set_defaults(handler=lambda _args: _print_help(sandbox))
    commands = sandbox.add_subparsers(title="subcommands", metavar="SUBCOMMAND")

    up = commands.add_parser("up", help="start clusters and write a kubeconfig", description=_up_description())
    clusters = up.add_mutually_exclusive_group()
    clusters.add_argument("--clusters", type=int, metavar="N", help="start N clusters sandbox-1..N (default 2)")
    clusters.add_argument("--names", metavar="A,B", help="start one cluster per comma-separated name")
    _add_version_options(up)
    up.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="PATH",
        help="where to write the kubeconfig (default ~/.kube/kibertas-async-sandbox.yaml)",
    )
    _add_state_dir_option(up)
    up.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="give up when not ready after this long (default 180)"
    )
    _add_addons_option(up)
    up.add_argument(
        "--extra-arg",
        action="append",
        default=[],
        metavar="COMPONENT=--FLAG[=VALUE]",
        help="add a flag to etcd, kube-apiserver, kube-controller-manager or kube-scheduler, e.g. "
        "--extra-arg kube-apiserver=--max-requests-inflight=50 (repeatable; after the sandbox's own flags)",
    )
    up.set_defaults(handler=_up)

    status = commands.add_parser("status", help="show clusters, endpoints and processes")
    _add_state_dir_option(status)
    status.set_defaults(handler=_status)

    down = commands.add_parser("down", help="stop every sandbox process and delete its data and kubeconfig")
    _add_state_dir_option(down)
    down.set_defaults(handler=_down)

    build = commands.add_parser(
        "build", help="build (or find) the binaries, and prepare the add-ons, without starting anything"
    )
    _add_version_options(build)
    _add_addons_option(build)
    build.set_defaults(handler=_build)


def _up_description() -> str:
    return (
        "Start N Kubernetes clusters on 127.0.0.1 (own kube-apiserver with RBAC, controller-manager, "
        "scheduler and kwok nodes each; one shared etcd), building the binaries first if needed. "
        "The processes keep running after this command returns; stop them with `sandbox down`."
    )


def _add_version_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubernetes-version", metavar="V", help="Kubernetes release to run (default 1.36.3)")
    parser.add_argument(
        "--bin-dir",
        type=Path,
        metavar="DIR",
        help="take all binaries from DIR instead of building them (also $KIBERTAS_ASYNC_SANDBOX_BIN_DIR)",
    )


def _add_addons_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--addons",
        metavar="A,B",
        help="only these add-ons, e.g. --addons kwok for a control plane with nodes in seconds; "
        "'none' for the control plane alone (default: kwok and every add-on the installed plugins register)",
    )


def _selected_addons(args: argparse.Namespace) -> tuple[SandboxAddon, ...] | None:
    """The add-ons ``--addons`` names, or None (the default set) without it."""
    from kibertas_async.options.option import split_names
    from kibertas_async.sandbox.addons.discovery import select_addons

    if args.addons is None:
        return None
    if args.addons.strip() == "none":
        return ()
    names = split_names(args.addons, source="--addons", hint="; give add-on names like --addons kwok,bind9, or none")
    return select_addons(names)


def _extra_args(values: list[str]) -> dict[str, list[str]]:
    """``--extra-arg COMPONENT=--FLAG[=VALUE]`` values, by component (checked by SandboxConfig)."""
    from kibertas_async.errors import UsageError

    extra: dict[str, list[str]] = {}
    for value in values:
        component, separator, flag = value.partition("=")
        if not separator or not flag:
            raise UsageError(f"--extra-arg {value!r}: give COMPONENT=--FLAG[=VALUE], e.g. kube-scheduler=--v=4")
        extra.setdefault(component, []).append(flag)
    return extra


def _add_state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="where pids, ports, logs and data live "
        "(default ~/.local/state/kibertas-async/sandbox, or $KIBERTAS_ASYNC_SANDBOX_STATE_DIR)",
    )


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _up(args: argparse.Namespace) -> int:
    from kibertas_async.errors import UsageError
    from kibertas_async.options.option import split_names
    from kibertas_async.sandbox.errors import SandboxError
    from kibertas_async.sandbox.runner import Sandbox, SandboxConfig, numbered_cluster_names
    from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION

    if args.names is not None:
        names = tuple(split_names(args.names, source="--names", hint="; give cluster names like --names old,new"))
    else:
        names = numbered_cluster_names(2 if args.clusters is None else args.clusters)
    if args.timeout is not None and not args.timeout > 0:  # also refuses nan
        raise UsageError(f"--timeout {args.timeout:g} must be a number of seconds above zero")
    config = SandboxConfig(
        cluster_names=names,
        kubernetes_version=args.kubernetes_version or DEFAULT_KUBERNETES_VERSION,
        bin_dir=args.bin_dir,
        extra_args=_extra_args(args.extra_arg),
    )
    addons = _selected_addons(args)
    if addons is not None:
        config = dataclasses.replace(config, addons=addons)
    if args.kubeconfig is not None:
        config = dataclasses.replace(config, kubeconfig=args.kubeconfig.expanduser().absolute())
    if args.state_dir is not None:
        config = dataclasses.replace(config, state_dir=args.state_dir.expanduser().absolute())
    if args.timeout is not None:
        config = dataclasses.replace(config, ready_timeout=args.timeout)
    try:
        sandbox = Sandbox.start(config, progress=_progress)
    except SandboxError as error:
        print(f"sandbox up failed: {error}", file=sys.stderr)
        print(f"logs are kept in {config.state_dir}; `kibertas-async sandbox down` removes them", file=sys.stderr)
        return _SANDBOX_FAILED
    count = len(sandbox.clusters)
    print(f"sandbox ready: Kubernetes v{sandbox.kubernetes_version}, {count} cluster{'s' * (count != 1)}")
    for cluster in sandbox.clusters:
        print(f"  context {cluster.context}: {cluster.server}")
    print(f"\nkubeconfig written to {sandbox.kubeconfig}; its contexts carry the add-ons' settings")
    print(f"({sandbox.run_config}), so every check runs on the sandbox as is:\n")
    print(f"  {sandbox.run_command()}")
    print("\nor with kubectl:\n")
    print(f"  export KUBECONFIG={shlex.quote(str(sandbox.kubeconfig))}")
    print(f"  {shlex.quote(str(sandbox.binaries.kubectl))} --context {sandbox.clusters[0].context} get nodes")
    print("\nstop it with: kibertas-async sandbox down" + _state_dir_flag(args))
    return 0


def _status(args: argparse.Namespace) -> int:
    from kibertas_async.sandbox.runner import Sandbox

    sandbox = Sandbox.load(_state_dir(args))
    if sandbox is None:
        print(f"no sandbox recorded in {_state_dir(args)}")
        return _SANDBOX_FAILED
    for line in sandbox.describe():
        print(line)
    healthy = all(process.is_alive() for process in sandbox.processes()) and all(
        cluster.is_ready() for cluster in sandbox.clusters
    )
    return 0 if healthy else _SANDBOX_FAILED


def _down(args: argparse.Namespace) -> int:
    from kibertas_async.sandbox.runner import Sandbox

    sandbox = Sandbox.load(_state_dir(args))
    if sandbox is None:
        print(f"no sandbox recorded in {_state_dir(args)}; nothing to stop")
        return 0
    count = sum(process.is_alive() for process in sandbox.processes())
    sandbox.down()
    print(f"stopped {count} processes; removed {sandbox.state_dir} and {sandbox.kubeconfig}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from kibertas_async.sandbox.addons import prepare_addons
    from kibertas_async.sandbox.addons.discovery import default_addons
    from kibertas_async.sandbox.build import ensure_binaries
    from kibertas_async.sandbox.errors import SandboxError
    from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION

    try:
        binaries = ensure_binaries(
            args.kubernetes_version or DEFAULT_KUBERNETES_VERSION, bin_dir=args.bin_dir, progress=_progress
        )
        addons = _selected_addons(args)
        prepare_addons(default_addons() if addons is None else addons, _progress)
    except SandboxError as error:
        print(error, file=sys.stderr)
        return _SANDBOX_FAILED
    for path in binaries.all():
        print(path)
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _state_dir(args: argparse.Namespace) -> Path:
    from kibertas_async.sandbox.runner import default_state_dir

    return args.state_dir.expanduser().absolute() if args.state_dir is not None else default_state_dir()


def _state_dir_flag(args: argparse.Namespace) -> str:
    return "" if args.state_dir is None else f" --state-dir {shlex.quote(str(args.state_dir))}"
