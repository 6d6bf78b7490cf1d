"""``report merge SOURCE``: the shard reports of one run, found in a directory or under an S3 prefix,
combined into the run's report, handed to the reporters and notifiers exactly as a run's own report
is (:meth:`Engine.deliver <kibertas_async.engine.runner.Engine.deliver>`): one JSON report, one JUnit
file, the summary table, one message. Missing shards are named and make the exit code 1."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kibertas_async.errors import KibertasError, UsageError

if TYPE_CHECKING:
    from kibertas_async.kube import ClusterTarget
    from kibertas_async.options import Option, OptionValues
    from kibertas_async.plugins import Registry
    from kibertas_async.reports.store import ReportStore
    from kibertas_async.results import RunReport

POLL_INTERVAL = 5.0
"""How often ``--wait`` looks for the reports still missing."""
JOB_WAIT = 7200.0
"""How long ``--job`` waits for the Job to finish when ``--wait`` does not say."""


@dataclass(frozen=True)
class MergeRequest:
    """What ``report merge`` was asked, validated."""

    store: ReportStore
    run_id: str | None
    count: int | None
    wait: float | None
    job: str | None = None
    namespace: str = "default"
    target: ClusterTarget | None = None
    """Where the Job is (``--job``): the Pod's own cluster, or a kubeconfig context."""


def _positive_int(value: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return int(value)


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    """What ``report merge`` takes besides the logging, plugin and output options."""
    parser.add_argument("source", metavar="SOURCE", help="the directory or s3://BUCKET/PREFIX/ the shards wrote to")
    parser.add_argument(
        "--run-id",
        default=None,
        metavar="ID",
        help="the run to merge (default: the only run whose shard reports are in SOURCE)",
    )
    parser.add_argument(
        "--shards",
        type=_positive_int,
        default=None,
        metavar="N",
        help="how many shards the run had (default: as the reports say); with it, a run whose every "
        "report is missing is still reported",
    )
    parser.add_argument(
        "--wait",
        default=None,
        metavar="DURATION",
        help="wait up to this long for the reports still missing (e.g. 70m), looking every 5s; with --job, "
        "for the Job to finish (default 2h)",
    )
    job = parser.add_argument_group("the shards' Indexed Job (docs/sharding.md)")
    job.add_argument(
        "--job",
        default=None,
        metavar="NAME",
        help="wait until this Indexed Job has finished, then merge its run: the Job's uid is the run id "
        "(its pods' controller-uid label) and its completions the number of shards",
    )
    job.add_argument(
        "--namespace",
        default=None,
        metavar="NS",
        help="the Job's namespace (default: the Pod's own, else 'default')",
    )
    job.add_argument("--context", default=None, metavar="CONTEXT", help="kubeconfig context of the Job's cluster")
    job.add_argument("--kubeconfig", default=None, metavar="PATH", help="kubeconfig file(s), ':'-separated")


def merge_options(registry: Registry) -> list[Option[Any]]:
    """The options ``report merge`` takes: run-wide outputs and notifiers, the notify timeout; not the
    engine's run settings nor any check's options."""
    from kibertas_async.engine import settings

    return [
        option
        for option in registry.options
        if not option.per_cluster and (option not in settings.ENGINE_OPTIONS or option is settings.NOTIFY_TIMEOUT)
    ]


def merge_command(args: argparse.Namespace, registry: Registry, flags: Mapping[str, str]) -> int:
    """Validate everything, find and merge the reports, deliver the result; 0 all passed, 1 NG or a
    shard missing, 2 bad input."""
    import anyio

    from kibertas_async.events import configure_logging
    from kibertas_async.options import parse_duration
    from kibertas_async.options.config_file import ConfigFile
    from kibertas_async.options.resolution import resolve_options
    from kibertas_async.reports.store import open_store

    store = open_store(args.source, source="SOURCE")
    run_options = resolve_options(registry.options, flags=flags, environ=os.environ, config=ConfigFile(), cluster=None)
    _check_output_paths(run_options, registry)
    if args.run_id is not None and not args.run_id.strip():
        raise UsageError("--run-id is empty; give the run's id, or leave it out")
    wait = 0.0
    if args.wait is not None:
        try:
            wait = parse_duration(args.wait)
        except ValueError as error:
            raise UsageError(f"--wait: {error}") from None
    request = MergeRequest(store, args.run_id, args.shards, wait if args.wait is not None else None)
    if args.job is not None:
        from kibertas_async.clusters import select_clusters
        from kibertas_async.reports._job import default_namespace

        if not args.job.strip():
            raise UsageError("--job is empty; give the Indexed Job's name, or leave it out")
        requested = [args.context] if args.context else []
        (target,) = select_clusters(requested, kubeconfig=args.kubeconfig, environ=os.environ)[:1]
        namespace = args.namespace or default_namespace(os.environ)
        request = MergeRequest(store, args.run_id, args.shards, request.wait, args.job, namespace, target)
    elif args.namespace or args.context:
        raise UsageError("--namespace and --context are where the --job is; give --job too")
    configure_logging(log_format=args.log_format, level=args.log_level)
    report: RunReport = anyio.run(_merge, request, run_options, registry)
    return 0 if report.ok else 1


def _check_output_paths(run_options: OptionValues, registry: Registry) -> None:
    from pathlib import Path

    for option in registry.options:
        if option.name in ("report-json", "junit-xml", "report-html"):
            path = run_options[option]
            if path is not None and not Path(path).parent.is_dir():
                raise UsageError(f"{option.flag}: directory {Path(path).parent} does not exist")


async def _merge(request: MergeRequest, run_options: OptionValues, registry: Registry) -> RunReport:
    import anyio

    from kibertas_async.engine.runner import Engine, RunPlan
    from kibertas_async.events import get_logger
    from kibertas_async.outputs.json_report import report_from_dict
    from kibertas_async.reports._merge import merge_reports
    from kibertas_async.reports.store import ReportStoreError

    store, run_id, count, wait = request.store, request.run_id, request.count, request.wait or 0.0
    if request.job is not None and request.target is not None:
        from kibertas_async.reports._job import wait_for_job

        job = await wait_for_job(request.target, request.job, request.namespace, timeout=request.wait or JOB_WAIT)
        if run_id is not None and run_id != job.uid:
            raise UsageError(f"--run-id {run_id} is not the run of Job {job.namespace}/{job.name} ({job.uid})")
        if count is not None and count != job.completions:
            raise UsageError(f"--shards {count}, but Job {job.namespace}/{job.name} has {job.completions} completions")
        run_id, count, wait = job.uid, job.completions, 0.0  # the Job is done: no report is still to come
    deadline = anyio.current_time() + wait
    while True:
        run_id, names, count = await _find(store, run_id, count)
        complete = count is not None and len(names) == count
        remaining = deadline - anyio.current_time()
        if complete or remaining <= 0:
            break
        await anyio.sleep(min(POLL_INTERVAL, remaining))
    if run_id is None or count is None:
        wanted = f"of run {run_id} " if run_id else ""
        raise KibertasError(f"no shard report {wanted}in {store.location} (give --shards N to report them all missing)")

    log = get_logger(run_id=run_id)
    reports: list[RunReport] = []
    why_missing: dict[int, str] = {}
    for index, name in sorted(names.items()):
        try:
            report = report_from_dict(json.loads(await store.get(name)))
        except (ReportStoreError, ValueError) as error:
            why_missing[index] = f"sent a report that cannot be read ({error})"
            continue
        if report.shard is None or report.shard.index != index or report.shard.count != count:
            why_missing[index] = f"sent a report whose content is not shard {index}/{count} ({name})"
            continue
        reports.append(report)
    merged = merge_reports(run_id, reports, count=count, why_missing=why_missing)
    assert merged.shard is not None
    for index in merged.shard.missing:
        log.error(
            "shard.missing",
            shard=f"{index}/{count}",
            reason=why_missing.get(index, f"no report in {store.location}"),
            checks=len(merged.shard.assignment[index - 1]) if merged.shard.assignment else None,
        )
    log.info("report.merged", shards=count, merged=list(merged.shard.merged), missing=list(merged.shard.missing))
    for problem in registry.problems:
        if all((p.plugin, p.hook) != (problem.plugin, problem.hook) for p in merged.plugin_problems):
            merged.plugin_problems.append(problem)
    # The engine's own delivery, so the merged run reaches the same reporters and notifiers a run does.
    plan = RunPlan(
        run_id=run_id, clusters=[], checks=[], cluster_options={}, run_options=run_options, plugin_problems=[]
    )
    engine = Engine(plan, registry.hook)
    engine.report = merged
    await engine.deliver()
    _print_shards(merged)
    return merged


async def _find(
    store: ReportStore, run_id: str | None, count: int | None
) -> tuple[str | None, dict[int, str], int | None]:
    """The run, its shard reports by index, and N, from the names in ``store``."""
    from kibertas_async.reports.store import parse_report_name

    found = [item for item in map(parse_report_name, await store.names()) if item is not None]
    if run_id is None:
        runs = sorted({item.run_id for item in found})
        if len(runs) > 1:
            shown = ", ".join(runs[:5]) + (", ..." if len(runs) > 5 else "")
            raise UsageError(
                f"{store.location} holds shard reports of {len(runs)} runs ({shown}); choose one with --run-id"
            )
        run_id = runs[0] if runs else None
    mine = [item for item in found if item.run_id == run_id]
    counts = {item.shard.count for item in mine} | ({count} if count is not None else set())
    if len(counts) > 1:
        raise UsageError(
            f"run {run_id}: shard reports in {store.location} disagree on how many shards there are "
            f"({', '.join(map(str, sorted(counts)))})"
        )
    return run_id, {item.shard.index: item.name for item in mine}, (counts.pop() if counts else None)


def _print_shards(report: RunReport) -> None:
    shard = report.shard
    assert shard is not None
    line = f"shards: {len(shard.merged)} of {shard.count} reported (run {report.run_id})"
    if shard.missing:
        line += "; MISSING: " + ", ".join(f"{index}/{shard.count}" for index in shard.missing)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
