"""The ``run``, ``list`` and ``cleanup`` commands."""

from __future__ import annotations

import argparse
import os
import secrets
import string
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from kibertas_async.errors import UsageError
from kibertas_async.shards.cli import add_shard_flags, prepare_shard, print_shard_plan, run_shard

if TYPE_CHECKING:
    from kibertas_async.checks import Check
    from kibertas_async.cleanup import SweepResult
    from kibertas_async.clusters.selection import ContextSettings
    from kibertas_async.kube import ClusterTarget
    from kibertas_async.options import Option
    from kibertas_async.plugins import Registry

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
LOG_FORMATS = ("auto", "json", "console", "live")
LOG_LEVELS = ("debug", "info", "warning", "error")


def load_registry(argv: list[str], environ: Mapping[str, str]) -> Registry:
    """Load plugins, honouring ``--plugin`` and ``--disable-plugin`` wherever they appear."""
    from kibertas_async.plugins import create_plugin_manager

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    pre.add_argument("--disable-plugin", action="append", default=[])
    known, _ = pre.parse_known_args(argv)
    return create_plugin_manager(
        extra_plugins=known.plugin,
        disabled=[name for value in known.disable_plugin for name in value.split(",")],
        environ=environ,
    )


def _add_plugin_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("plugins")
    group.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="also load this module as a plugin (repeatable)",
    )
    group.add_argument(
        "--disable-plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="do not load the entry-point plugin NAME (repeatable; env KIBERTAS_ASYNC_DISABLE_PLUGINS=a,b; "
        "KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD=1 loads none)",
    )


def _one_of(choices: tuple[str, ...], sources: str) -> Callable[[str], str]:
    """An argparse ``type`` for a word from ``choices``, any case. argparse converts a default taken from
    the environment with it too (it checks ``choices`` only on the command line), so ``LOG_LEVEL=loud``
    is a usage error instead of a traceback."""

    def parse(value: str) -> str:
        word = value.strip().lower()
        if word not in choices:
            raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(choices)} (from {sources})")
        return word

    return parse


def _not_blank(sources: str) -> Callable[[str], str]:
    """An argparse ``type`` refusing an empty value, from the flag or from the environment."""

    def parse(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"the value is empty (from {sources}); give a path, or leave it out")
        return value

    return parse


def _add_logging_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--log-format",
        type=_one_of(LOG_FORMATS, "--log-format or KIBERTAS_ASYNC_LOG_FORMAT"),
        choices=LOG_FORMATS,
        default=os.environ.get("KIBERTAS_ASYNC_LOG_FORMAT", "auto"),
        help="events on stderr: auto is JSON lines off a terminal and, on one, the live board for run (console "
        "lines with TERM=dumb or $CI true, and for other commands); or json, console, live (env "
        "KIBERTAS_ASYNC_LOG_FORMAT)",
    )
    group.add_argument(
        "--log-level",
        type=_one_of(LOG_LEVELS, "--log-level, KIBERTAS_ASYNC_LOG_LEVEL or LOG_LEVEL"),
        choices=LOG_LEVELS,
        default=os.environ.get("KIBERTAS_ASYNC_LOG_LEVEL", os.environ.get("LOG_LEVEL", "info")).lower(),
        help="least important event shown (env KIBERTAS_ASYNC_LOG_LEVEL or LOG_LEVEL; default info)",
    )


def _add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("clusters")
    group.add_argument(
        "--clusters",
        default=None,
        metavar="A,B",
        help="kubeconfig contexts to check, comma-separated; NAME=CONTEXT gives a context a short name; "
        "'in-cluster' is the Pod's service account (env KIBERTAS_ASYNC_CLUSTERS; default: the current "
        "context, or in-cluster in a Pod)",
    )
    group.add_argument(
        "--kubeconfig",
        default=None,
        metavar="PATH",
        help="kubeconfig file(s), ':'-separated (default: $KUBECONFIG, else ~/.kube/config)",
    )


def _requested_clusters(args: argparse.Namespace) -> list[str]:
    """``--clusters``, else ``KIBERTAS_ASYNC_CLUSTERS``, split; neither given is ``[]`` (the default)."""
    from kibertas_async.clusters.selection import CLUSTERS_ENV, split_cluster_list

    if args.clusters is not None:
        return split_cluster_list(args.clusters, source="--clusters")
    if CLUSTERS_ENV in os.environ:
        return split_cluster_list(os.environ[CLUSTERS_ENV], source=CLUSTERS_ENV)
    return []


# --- run ---------------------------------------------------------------------------------------


def add_run_command(commands: SubParsers, registry: Registry | None) -> None:
    """``run``: the checks, on the clusters."""
    parser = commands.add_parser(
        "run",
        help="run checks on clusters",
        description="Run checks concurrently on every cluster and report OK/NG per cluster and check.",
        epilog=(
            "Every check option can also be set by environment variable (KIBERTAS_ASYNC_<NAME>, and the "
            "reference tool's names where listed) or in the --config file (defaults, or clusters.<name> "
            "per cluster). Precedence: flag > environment > config clusters.<name> > config defaults > "
            "the kubeconfig context's settings (kibertas-async.io/settings, written by `sandbox up`) > "
            "default.\nexit codes: 0 all passed, 1 a check failed/errored/timed out, 2 bad input, "
            "130/143 interrupted."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checks", nargs="*", metavar="CHECK", help="checks to run (see 'kibertas-async list')")
    parser.add_argument("--all", action="store_true", help="run every installed check")
    parser.add_argument("--tags", default=None, metavar="T1,T2", help="run the checks carrying any of these tags")
    parser.add_argument("--exclude", default=None, metavar="C1,C2", help="leave these checks out")
    parser.add_argument(
        "--config",
        type=_not_blank("--config or KIBERTAS_ASYNC_CONFIG"),
        default=os.environ.get("KIBERTAS_ASYNC_CONFIG"),
        metavar="PATH",
        help="YAML file with option defaults and per-cluster values (env KIBERTAS_ASYNC_CONFIG)",
    )
    parser.add_argument(
        "--ignore-kubeconfig-settings",
        action="store_true",
        help="do not apply the option values a kubeconfig context names (its kibertas-async.io/settings "
        "extension, which `sandbox up` writes)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the cluster x check matrix and what each would create"
    )
    parser.add_argument(
        "--run-id",
        default=os.environ.get("KIBERTAS_ASYNC_RUN_ID"),
        metavar="ID",
        help="label value identifying this run (env KIBERTAS_ASYNC_RUN_ID; default: generated)",
    )
    add_shard_flags(parser)
    parser.add_argument(
        "--compare",
        default=None,
        metavar="OLD,NEW",
        help="blue/green: compare two of the clusters' results at the end (outcomes, step timings, add-on "
        "versions); a regression makes the run exit 1",
    )
    _add_regression_flags(parser)
    _add_cluster_flags(parser)
    _add_logging_flags(parser)
    _add_plugin_flags(parser)
    if registry is not None:
        _add_option_flags(parser, registry)
    parser.set_defaults(handler=run_command)


def _add_option_flags(
    parser: argparse.ArgumentParser, registry: Registry, options: list[Option[Any]] | None = None
) -> None:
    from kibertas_async.options import parse_bool

    group = parser.add_argument_group("check and plugin options")
    for option in registry.options if options is None else options:
        env = ", ".join(option.env_names)
        text = f"{option.help} [env {env}]"
        if option.default not in (None, "", (), {}, False) and not option.secret:
            text += f" (default: {option.text(option.default)})"
        text = text.replace("%", "%%")
        if option.parse is parse_bool:
            group.add_argument(option.flag, dest=_dest(option), action=argparse.BooleanOptionalAction, help=text)
        else:
            group.add_argument(option.flag, dest=_dest(option), metavar=option.metavar, help=text)


def _dest(option: Option[Any]) -> str:
    return "option__" + option.name.replace("-", "_")


def run_command(args: argparse.Namespace) -> int:
    """Validate everything, then run (or, with --dry-run, describe) the plan."""
    from kibertas_async.clusters import select_clusters
    from kibertas_async.clusters.selection import context_settings
    from kibertas_async.engine.runner import RunPlan
    from kibertas_async.options.config_file import ConfigFile, load_config_file, with_context_settings
    from kibertas_async.options.resolution import check_config_keys, resolve_options

    registry: Registry = args.registry
    checks = _select_checks(args, registry)
    targets = (
        _dry_run_targets(args)
        if args.dry_run
        else select_clusters(_requested_clusters(args), kubeconfig=args.kubeconfig, environ=os.environ)
    )
    config = load_config_file(Path(args.config)) if args.config else ConfigFile()
    check_config_keys(config, registry.options)
    unknown_clusters = sorted(set(config.clusters) - {target.name for target in targets})
    settings: dict[str, ContextSettings] = {}
    if not args.ignore_kubeconfig_settings:
        settings = context_settings(targets, kubeconfig=args.kubeconfig, environ=os.environ)
        config = with_context_settings(config, settings, registry.options)
    flags = {
        option.name: getattr(args, _dest(option))
        for option in registry.options
        if getattr(args, _dest(option), None) is not None
    }
    run_options = resolve_options(registry.options, flags=flags, environ=os.environ, config=config, cluster=None)
    cluster_options = {
        target.name: resolve_options(
            registry.options, flags=flags, environ=os.environ, config=config, cluster=target.name
        )
        for target in targets
    }
    _check_report_paths(run_options, registry)
    run_id = _new_run_id() if args.run_id is None else args.run_id
    _check_run_id(run_id)
    plan = RunPlan(
        run_id=run_id,
        clusters=targets,
        checks=checks,
        cluster_options=cluster_options,
        run_options=run_options,
        plugin_problems=list(registry.problems),
        comparison=_comparison_settings(args, [target.name for target in targets]),
    )
    plan, sharding = prepare_shard(plan, args, os.environ)
    if args.dry_run:
        _print_dry_run(plan, registry, unknown_clusters, settings)
        print_shard_plan(plan, sharding, sys.stdout)
        return 0
    if sharding.shard is not None:
        return run_shard(plan, registry, args, sharding)
    return _execute(plan, registry, args)


def _execute(plan: Any, registry: Registry, args: argparse.Namespace) -> int:
    import anyio

    from kibertas_async.engine.runner import Engine
    from kibertas_async.events import run_view

    with run_view(args.log_format, level=args.log_level, plugins=registry.manager):
        engine = Engine(plan, registry.hook, handle_signals=True)
        anyio.run(engine.run)
    return engine.exit_code


def _select_checks(args: argparse.Namespace, registry: Registry) -> list[type[Check]]:
    from kibertas_async.options import split_names

    available = registry.checks
    excluded = set(split_names(args.exclude, source="--exclude")) if args.exclude is not None else set()
    tags = set(split_names(args.tags, source="--tags")) if args.tags is not None else set()
    for name in [*args.checks, *excluded]:
        if name not in available:
            raise UsageError(_unknown_check(name, registry))
    if args.all and args.checks:
        raise UsageError("give check names or --all, not both")
    if args.all:
        names = sorted(available)
    elif args.checks:
        names = list(dict.fromkeys(args.checks))
    elif tags:
        names = sorted(name for name, check in available.items() if check.tags & tags)
        if not names:
            known = sorted({tag for check in available.values() for tag in check.tags})
            raise UsageError(
                f"no check has any of the tags {', '.join(sorted(tags))} (tags in use: {', '.join(known) or 'none'})"
            )
    else:
        raise UsageError("name the checks to run, or use --all or --tags (kibertas-async list shows the checks)")
    if tags and (args.all or args.checks):
        names = [name for name in names if available[name].tags & tags]
    names = [name for name in names if name not in excluded]
    if not names:
        if not available:
            raise UsageError("no checks are installed (pip install a check plugin; kibertas-async list shows them)")
        raise UsageError("nothing left to run after --exclude/--tags")
    return [available[name] for name in names]


def _unknown_check(name: str, registry: Registry) -> str:
    import difflib

    message = f"unknown check {name!r}"
    close = difflib.get_close_matches(name, list(registry.checks), n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    elif registry.checks:
        message += f" (installed: {', '.join(sorted(registry.checks))})"
    else:
        message += " (no checks are installed)"
    if registry.problems:
        message += "; plugins that failed to load: " + ", ".join(p.plugin for p in registry.problems)
    return message


def _check_report_paths(run_options: Any, registry: Registry) -> None:
    for option in registry.options:
        if option.name in ("report-json", "junit-xml", "report-html"):
            path = run_options[option]
            if path is not None and not Path(path).parent.is_dir():
                raise UsageError(f"{option.flag}: directory {Path(path).parent} does not exist")


def _new_run_id() -> str:
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{suffix}"


def _check_run_id(run_id: str) -> None:
    import re

    if not re.fullmatch(r"[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?", run_id):
        raise UsageError(f"--run-id {run_id!r} must be a valid label value: lower-case letters, digits, '-', '_', '.'")


def _dry_run_targets(args: argparse.Namespace) -> list[ClusterTarget]:
    """The clusters a dry run describes. It needs no kubeconfig: when none of the kubeconfig files exists
    (a laptop, CI), the clusters are the ``--clusters`` entries as given (the current context without
    them), not checked against any file; otherwise they are selected exactly as for a real run."""
    from kibertas_async.clusters import select_clusters
    from kibertas_async.clusters.selection import IN_CLUSTER, in_pod, kubeconfig_paths
    from kibertas_async.kube import ClusterTarget

    requested = _requested_clusters(args)
    paths = kubeconfig_paths(args.kubeconfig, os.environ)
    if any(path.exists() for path in paths) or (not requested and in_pod(os.environ)):
        return select_clusters(requested, kubeconfig=args.kubeconfig, environ=os.environ)
    joined = os.pathsep.join(str(path) for path in paths)
    if not requested:
        return [ClusterTarget(name=DRY_RUN_CURRENT_CONTEXT, kubeconfig=joined)]
    targets: list[ClusterTarget] = []
    for item in requested:
        name, sep, context = item.partition("=")
        name, context = name.strip(), (context.strip() if sep else name.strip())
        if not name or not context:
            raise UsageError(f"--clusters entry {item!r} is empty; use NAME or NAME=CONTEXT, comma-separated")
        if any(target.name == name for target in targets):
            raise UsageError(f"cluster {name!r} is given twice in --clusters")
        in_cluster = context == IN_CLUSTER
        if in_cluster and not in_pod(os.environ):
            raise UsageError("--clusters in-cluster only works inside a Kubernetes Pod")
        targets.append(ClusterTarget(name, None if in_cluster else context, None if in_cluster else joined, in_cluster))
    return targets


DRY_RUN_CURRENT_CONTEXT = "current-context"
"""The cluster's name in a dry run without ``--clusters`` and without a kubeconfig to name it."""


def _kubeconfig_missing(target: ClusterTarget) -> bool:
    """Whether ``target`` names a context in kubeconfig files of which none exists (only a dry run has such)."""
    if target.in_cluster or not target.kubeconfig:
        return False
    return not any(Path(path).exists() for path in target.kubeconfig.split(os.pathsep))


def _where(target: ClusterTarget) -> str:
    """``context old``, ``the in-cluster service account``, or the current context of a kubeconfig."""
    if target.in_cluster:
        return "in-cluster service account"
    if target.context is None:
        return f"the current context of {target.kubeconfig}"
    return f"context {target.context}"


def _needed_context(target: ClusterTarget) -> str:
    """``context old (cluster old)``, or ``a current context`` for a dry run without ``--clusters``."""
    return f"context {target.context} (cluster {target.name})" if target.context else "a current context"


def _print_dry_run(
    plan: Any, registry: Registry, unknown_clusters: list[str], settings: Mapping[str, ContextSettings]
) -> None:
    from kibertas_async.options import format_duration

    out = sys.stdout
    size = f"{len(plan.checks)} check(s) x {len(plan.clusters)} cluster(s)"
    if plan.cells is not None:
        size = f"{len(plan.cells)} check(s) on {len(plan.clusters)} cluster(s), this shard's share"
    out.write(f"run {plan.run_id}: {size}; nothing is created\n")
    for name in unknown_clusters:
        out.write(f"note: config file has settings for cluster {name!r}, which is not in this run\n")
    for name, context in settings.items():
        out.write(f"note: cluster {name!r} takes settings from {context.config} ({context.describe()})\n")
    unchecked = [target for target in plan.clusters if _kubeconfig_missing(target)]
    if unchecked:
        out.write(
            f"note: kubeconfig {unchecked[0].kubeconfig} does not exist, so the contexts are not checked; "
            f"a real run needs it, with {', '.join(_needed_context(target) for target in unchecked)}\n"
        )
    for target in plan.clusters:
        out.write(f"\ncluster {target.name} ({_where(target)})\n")
        values = plan.cluster_options[target.name]
        for check in plan.checks:
            if plan.cells is not None and (target.name, check.name) not in plan.cells:
                continue  # another shard's
            plugin = registry.check_plugin[check.name]
            timeout = format_duration(check.timeout)
            out.write(f"  {check.name}  [{plugin.distribution} {plugin.version}]  timeout {timeout}\n")
            for item in check.creates:
                out.write(f"      creates  {item}\n")
            for option in check.options:
                out.write(f"      {option.name} = {option.display(values[option])}  ({values.source(option)})\n")
    run_wide = [option for option in registry.options if not option.per_cluster]
    if run_wide:
        out.write("\nrun options\n")
        for option in run_wide:
            value, source = option.display(plan.run_options[option]), plan.run_options.source(option)
            out.write(f"      {option.name} = {value}  ({source})\n")
    _print_permissions(plan.checks, out)


def _print_permissions(checks: list[type[Check]], out: Any) -> None:
    """The rules ``kibertas-async rbac`` grants for these checks, the engine's own included."""
    from kibertas_async.rbac import CLUSTER_WIDE, rbac_rules

    names = " ".join(check.name for check in checks)
    out.write(f"\npermissions (kibertas-async rbac {names} prints them as manifests)\n")
    for scope, rules in rbac_rules(checks).items():
        out.write("  ClusterRole\n" if scope is CLUSTER_WIDE else f"  Role in namespace {scope}\n")
        for rule in rules:
            out.write(f"      {rule.describe()}\n")


# --- compare -----------------------------------------------------------------------------------


def _add_regression_flags(parser: argparse.ArgumentParser) -> None:
    from kibertas_async.compare import DEFAULT_REGRESSION_FACTOR, DEFAULT_TIMING_FLOOR

    group = parser.add_argument_group("comparison")
    group.add_argument(
        "--regression-factor",
        type=_factor,
        default=DEFAULT_REGRESSION_FACTOR,
        metavar="F",
        help=f"a step that takes more than F times as long on the new cluster is a regression "
        f"(default {DEFAULT_REGRESSION_FACTOR:g})",
    )
    group.add_argument(
        "--timing-floor",
        type=_floor,
        default=DEFAULT_TIMING_FLOOR,
        metavar="D",
        help=f"durations under D count as D when judging a slowdown, so sub-second noise is never a "
        f"regression (default {DEFAULT_TIMING_FLOOR:g}s)",
    )


def _factor(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (example: 2.0)") from None
    if not value >= 1.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of at least 1 (example: 2.0)")
    return value


def _floor(text: str) -> float:
    from kibertas_async.options import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _comparison_settings(args: argparse.Namespace, clusters: list[str]) -> Any:
    """``--compare OLD,NEW`` as :class:`ComparisonSettings` (``None`` without it); bad names are bad input."""
    from kibertas_async.compare import ComparisonSettings
    from kibertas_async.options import split_names

    if args.compare is None:
        return None
    names = split_names(args.compare, source="--compare", hint="; give two cluster names, old first: --compare old,new")
    if len(names) != 2 or names[0] == names[1]:
        raise UsageError(f"--compare {args.compare!r}: give two different cluster names, old first (old,new)")
    for name in names:
        if name not in clusters:
            raise UsageError(f"--compare: {name!r} is not a cluster of this run (clusters: {', '.join(clusters)})")
    return ComparisonSettings(names[0], names[1], args.regression_factor, args.timing_floor)


def add_compare_command(commands: SubParsers) -> None:
    """``compare``: two saved JSON reports, blue/green."""
    parser = commands.add_parser(
        "compare",
        help="compare two saved run reports (blue/green)",
        description=(
            "Compare the results of an old and a new cluster from two --report-json files: per check both\n"
            "outcomes, the step timings with their ratio and the add-on versions. A regression is a check\n"
            "not OK on new where it was OK on old, a step more than --regression-factor times slower, or\n"
            "an add-on found on one side only; a version change is shown, not a regression."
        ),
        epilog="A report holding several clusters takes the cluster after a colon: report.json:old.\n"
        "exit codes: 0 no regression, 1 a regression, 2 bad input (unreadable or foreign report, unknown cluster).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("old", metavar="OLD.json[:CLUSTER]", help="the old cluster's report")
    parser.add_argument("new", metavar="NEW.json[:CLUSTER]", help="the new cluster's report")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON instead of a table")
    parser.add_argument(
        "--report-html",
        default=None,
        metavar="PATH",
        help="also write the comparison as one self-contained HTML page to this file",
    )
    _add_regression_flags(parser)
    parser.set_defaults(handler=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    """Print the comparison; exit 1 on a regression."""
    import json

    from kibertas_async.compare import ComparisonSettings, compare, comparison_to_dict
    from kibertas_async.compare.saved import load_side
    from kibertas_async.outputs.summary import format_comparison

    html_path = Path(args.report_html) if args.report_html is not None else None
    if html_path is not None and not html_path.parent.is_dir():
        raise UsageError(f"--report-html: directory {html_path.parent} does not exist")
    old, new = load_side(args.old), load_side(args.new)
    old_name, new_name = old.cluster, new.cluster
    if old_name == new_name:  # two reports of clusters named alike: tell the sides apart
        old_name, new_name = f"{old_name} (old)", f"{new_name} (new)"
    comparison = compare(old, new, ComparisonSettings(old_name, new_name, args.regression_factor, args.timing_floor))
    if args.json:
        print(json.dumps(comparison_to_dict(comparison), indent=2))
    else:
        print(format_comparison(comparison))
    if html_path is not None:
        from kibertas_async.outputs.html_report import render_comparison_html, write_page

        write_page(html_path, render_comparison_html(comparison))
    return 0 if comparison.ok else 1


# --- report ------------------------------------------------------------------------------------


def add_report_command(commands: SubParsers, registry: Registry | None) -> None:
    """``report merge``: one report from the shard reports of a sharded run (:mod:`kibertas_async.reports`)."""
    from kibertas_async.reports.cli import add_merge_arguments, merge_options

    parser = commands.add_parser("report", help="merge the reports of a sharded run", description="Stored reports.")
    reports: SubParsers = parser.add_subparsers(
        title="report commands", dest="report_command", metavar="COMMAND", parser_class=type(parser)
    )
    merge = reports.add_parser(
        "merge",
        help="combine a sharded run's shard reports into one report, JUnit file, summary and message",
        description="Combine the shard reports of one run (run --shard, --report-dir/--report-s3) into the run's "
        "report, JUnit file, summary table and one notification; missing shards are named (docs/sharding.md).",
        epilog="exit codes: 0 every check passed, 1 a check failed/errored/timed out or a shard is missing, "
        "2 bad input.",
    )
    add_merge_arguments(merge)
    _add_logging_flags(merge)
    _add_plugin_flags(merge)
    if registry is not None:
        _add_option_flags(merge, registry, merge_options(registry))
    merge.set_defaults(handler=report_merge_command)
    parser.set_defaults(handler=_no_report_command)


def _no_report_command(args: argparse.Namespace) -> int:
    raise UsageError("report: give a command: merge (see kibertas-async report --help)")


def report_merge_command(args: argparse.Namespace) -> int:
    """The option flags given, then :func:`kibertas_async.reports.cli.merge_command`."""
    from kibertas_async.reports.cli import merge_command

    registry: Registry = args.registry
    flags = {
        option.name: getattr(args, _dest(option))
        for option in registry.options
        if getattr(args, _dest(option), None) is not None
    }
    return merge_command(args, registry, flags)


# --- list --------------------------------------------------------------------------------------


def add_list_command(commands: SubParsers) -> None:
    """``list``: the installed checks."""
    parser = commands.add_parser(
        "list",
        help="list installed checks",
        description="Every installed check with its plugin and description.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_plugin_flags(parser)
    parser.set_defaults(handler=list_command)


def list_command(args: argparse.Namespace) -> int:
    """Print the checks; plugins that failed to load are listed after them (exit code 1 then)."""
    import json

    from kibertas_async.rbac import permission_json

    registry: Registry = args.registry
    rows: list[dict[str, Any]] = []
    for name in sorted(registry.checks):
        check = registry.checks[name]
        plugin = registry.check_plugin[name]
        rows.append(
            {
                "name": name,
                "plugin": plugin.name,
                "distribution": plugin.distribution,
                "version": plugin.version,
                "tags": sorted(check.tags),
                "description": check.description,
                "permissions": [permission_json(permission) for permission in check.permissions],
                "options": [_option_json(option) for option in check.options],
            }
        )
    if args.json:
        problems = [{"plugin": p.plugin, "hook": p.hook, "error": p.error} for p in registry.problems]
        print(json.dumps({"checks": rows, "plugin_problems": problems}, indent=2, default=str))
    else:
        table = [("CHECK", "PLUGIN", "VERSION", "TAGS", "DESCRIPTION")] + [
            (
                row["name"],
                f"{row['distribution']}",
                str(row["version"]),
                ",".join(row["tags"]),
                str(row["description"]),
            )
            for row in rows
        ]
        widths = [max(len(str(line[i])) for line in table) for i in range(4)]
        for line in table:
            print(
                "  ".join(str(cell).ljust(width) for cell, width in zip(line[:4], widths, strict=True)) + "  " + line[4]
            )
        if not rows:
            print("(no checks installed)")
        for problem in registry.problems:
            print(problem.describe(), file=sys.stderr)
    return 1 if registry.problems else 0


def _option_json(option: Option[Any]) -> dict[str, Any]:
    """An option for ``list --json``: a duration's default as a duration (``10m``), a secret's never."""
    default: Any = None if option.secret else option.default
    if option.is_duration and default is not None:
        default = option.text(default)
    return {
        "name": option.name,
        "flag": option.flag,
        "env": list(option.env_names),
        "default": default,
        "secret": option.secret,
        "per_cluster": option.per_cluster,
        "help": option.help,
    }


# --- cleanup -----------------------------------------------------------------------------------


def add_cleanup_command(commands: SubParsers) -> None:
    """``cleanup``: remove what a killed run left behind."""
    parser = commands.add_parser(
        "cleanup",
        help="delete what killed runs left behind",
        description=(
            "Delete every object labelled app.kubernetes.io/managed-by=kibertas-async (only those of one "
            "run with --run-id), of every kind the API server can list and delete, in any namespace or "
            "cluster-scoped; namespaces last. Objects still there after --timeout are listed with their "
            "finalizers. For runs that were killed (SIGKILL, node loss) before their own cleanup."
        ),
        epilog="exit codes: 0 everything labelled is gone (or --dry-run), 1 a cluster failed or something is left, "
        "2 bad input.",
    )
    parser.add_argument("--run-id", default=None, metavar="ID", help="only what this run created")
    parser.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    parser.add_argument(
        "--timeout",
        default=None,
        metavar="D",
        help="how long to wait for deleted objects to go before reporting them with their finalizers (default 1m)",
    )
    _add_cluster_flags(parser)
    _add_logging_flags(parser)
    parser.set_defaults(handler=cleanup_command)


def cleanup_command(args: argparse.Namespace) -> int:
    """Validate everything, then sweep each cluster of our labelled objects (see :mod:`kibertas_async.cleanup`)."""
    import anyio

    from kibertas_async.cleanup import DEFAULT_WAIT, summary_lines
    from kibertas_async.clusters import select_clusters
    from kibertas_async.events import configure_logging
    from kibertas_async.options import parse_duration

    targets = select_clusters(_requested_clusters(args), kubeconfig=args.kubeconfig, environ=os.environ)
    if args.run_id is not None:
        _check_run_id(args.run_id)
    wait = DEFAULT_WAIT
    if args.timeout is not None:
        try:
            wait = parse_duration(args.timeout)
        except ValueError as error:
            raise UsageError(f"--timeout: {error}") from None
    configure_logging(log_format=args.log_format, level=args.log_level)
    results = anyio.run(_cleanup_clusters, targets, args.run_id, args.dry_run, wait)
    for result in results:
        for line in summary_lines(result, dry_run=args.dry_run, wait=wait):
            print(line)
    return 0 if all(result.ok for result in results) else 1


async def _cleanup_clusters(
    targets: list[ClusterTarget], run_id: str | None, dry_run: bool, wait: float
) -> list[SweepResult]:
    from kibertas_async.cleanup import LabelledObject, sweep_clusters
    from kibertas_async.events import get_logger

    def deleted(cluster: str, item: LabelledObject) -> None:
        get_logger(cluster=cluster).info("cleanup.done", action=f"delete {item.describe()}")

    results = await sweep_clusters(targets, run_id, dry_run=dry_run, wait=wait, on_deleted=deleted)
    for result in results:
        log = get_logger(cluster=result.cluster)
        if result.error is not None:
            log.error("cleanup.failed", reason=result.error)
        for item, reason in result.failures:
            log.error("cleanup.failed", action=f"delete {item.describe()}", reason=reason)
        for item in result.remaining:
            log.error(
                "cleanup.failed",
                action=f"delete {item.describe()}",
                reason=f"still there after {wait:g}s",
                finalizers=list(item.finalizers),
            )
    return results
