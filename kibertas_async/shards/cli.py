"""``run``'s sharding flags, and running one shard: its share of the matrix, its report stored for the
merge, and no notification (``report merge`` sends the run's one message)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from kibertas_async.errors import UsageError
from kibertas_async.shards._assignment import JOB_INDEX_ENV, SHARD_COUNT_ENV, Shard, assign_shards, requested_shard

if TYPE_CHECKING:
    import pluggy

    from kibertas_async.engine.runner import RunPlan
    from kibertas_async.plugins import Registry
    from kibertas_async.reports.store import ReportStore

REPORT_DIR_ENV = "KIBERTAS_ASYNC_REPORT_DIR"
REPORT_S3_ENV = "KIBERTAS_ASYNC_REPORT_S3"
RUN_ID_ENV = "KIBERTAS_ASYNC_RUN_ID"


def add_shard_flags(parser: argparse.ArgumentParser) -> None:
    """``--shard``, ``--report-dir`` and ``--report-s3`` (docs/sharding.md)."""
    group = parser.add_argument_group("sharding (docs/sharding.md)")
    group.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help=f"run shard I of N of the cluster x check matrix (in an Indexed Job: {JOB_INDEX_ENV} + 1 of "
        f"{SHARD_COUNT_ENV}); the shard sends no message, 'report merge' does",
    )
    group.add_argument(
        "--report-dir",
        default=os.environ.get(REPORT_DIR_ENV),
        metavar="DIR",
        help=f"write the JSON report to DIR/<run-id>.shard-<I>-of-<N>.json (env {REPORT_DIR_ENV})",
    )
    group.add_argument(
        "--report-s3",
        default=os.environ.get(REPORT_S3_ENV),
        metavar="s3://BUCKET/PREFIX/",
        help=f"write the JSON report to s3://BUCKET/PREFIX/<run-id>.shard-<I>-of-<N>.json (env {REPORT_S3_ENV}; "
        "AWS credentials, region and AWS_ENDPOINT_URL_S3 as the AWS SDK reads them)",
    )


@dataclass
class ShardSetup:
    """What ``run`` was asked to do about sharding."""

    shard: Shard | None = None
    """The shard this process runs; 1/1 when only a report location was given."""
    requested: bool = False
    """``--shard`` or the Indexed Job's environment asked for a shard (then no message is sent)."""
    stores: list[ReportStore] = field(default_factory=list)


def prepare_shard(plan: RunPlan, args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[RunPlan, ShardSetup]:
    """Narrow ``plan`` to this shard's cells (when sharded) and open the report locations.

    :raises UsageError: a bad shard or location; a shard with nowhere to put its report; shards of more
        than one that were not given one run id (their reports could not be merged).
    """
    from kibertas_async.reports.store import open_store
    from kibertas_async.results import ShardInfo

    shard = requested_shard(args.shard, environ)
    stores: list[ReportStore] = []
    if args.report_dir is not None:
        stores.append(open_store(args.report_dir, source=f"--report-dir (or {REPORT_DIR_ENV})"))
    if args.report_s3 is not None:
        if not args.report_s3.strip().startswith("s3:"):
            raise UsageError(f"--report-s3 {args.report_s3!r} is not s3://BUCKET/PREFIX/ (a directory: --report-dir)")
        stores.append(open_store(args.report_s3, source=f"--report-s3 (or {REPORT_S3_ENV})"))
    setup = ShardSetup(shard=shard, requested=shard is not None, stores=stores)
    if shard is None and not stores:
        return plan, setup
    if shard is None:
        shard = setup.shard = Shard(1, 1)
    if setup.requested and plan.comparison is not None:
        raise UsageError(
            "--compare needs both clusters' results in one process: compare the merged report instead "
            "(kibertas-async compare merged.json:OLD merged.json:NEW)"
        )
    if not args.dry_run:
        if setup.requested and not stores:
            raise UsageError(
                f"shard {shard} has nowhere to put its report: give --report-dir or --report-s3 "
                "('report merge' reads them there)"
            )
        if shard.count > 1 and args.run_id is None:
            raise UsageError(
                f"shard {shard}: give every shard the same --run-id (or {RUN_ID_ENV}; in an Indexed Job, the Job's "
                "controller-uid label), so that 'report merge' can tell the run's shards apart from other runs'"
            )
    assignment = assign_shards([target.name for target in plan.clusters], plan.checks, shard.count)
    cells = frozenset(assignment[shard.index - 1])
    narrowed = dataclasses.replace(
        plan,
        clusters=[target for target in plan.clusters if any(cell[0] == target.name for cell in cells)],
        checks=[check for check in plan.checks if any(cell[1] == check.name for cell in cells)],
        cells=cells,
        shard=ShardInfo(count=shard.count, assignment=assignment, index=shard.index),
    )
    return narrowed, setup


def print_shard_plan(plan: RunPlan, setup: ShardSetup, out: IO[str]) -> None:
    """For ``--dry-run``: which shard gets which checks on which clusters, this one marked."""
    info = plan.shard
    if info is None or setup.shard is None:
        return
    out.write(f"\nshards ({info.count}; this is shard {setup.shard}; each row: cluster: checks)\n")
    for number, cells in enumerate(info.assignment, start=1):
        mark = "  <- this shard" if number == setup.shard.index else ""
        out.write(f"  shard {number}/{info.count}: {len(cells)} check(s){mark}\n")
        by_cluster: dict[str, list[str]] = {}
        for cluster, check in cells:
            by_cluster.setdefault(cluster, []).append(check)
        for cluster, checks in by_cluster.items():
            out.write(f"      {cluster}: {' '.join(checks)}\n")
    from kibertas_async.reports.store import report_name

    for store in setup.stores:
        separator = "" if store.location.endswith("/") else "/"
        out.write(f"  report: {store.location}{separator}{report_name(plan.run_id, setup.shard)}\n")


class _HooksWithoutNotifiers:
    """The plugin manager's hooks, except that no plugin registers a notifier: a shard's results reach
    people once, in the merged run's message."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self._manager = manager

    def __getattr__(self, name: str) -> Any:
        if name == "kibertas_async_register_notifiers":
            return self._manager.subset_hook_caller(name, remove_plugins=self._manager.get_plugins())
        return getattr(self._manager.hook, name)


def run_shard(plan: RunPlan, registry: Registry, args: argparse.Namespace, setup: ShardSetup) -> int:
    """Run the shard, then store its report everywhere asked. The exit code is the run's; a report
    that could not be stored makes it 1 (the merge will report the shard missing)."""
    import anyio

    from kibertas_async.engine.runner import Engine
    from kibertas_async.events import configure_logging, get_logger
    from kibertas_async.outputs.json_report import report_to_dict
    from kibertas_async.reports.store import ReportStoreError, report_name

    assert setup.shard is not None
    configure_logging(log_format=args.log_format, level=args.log_level)
    hook = _HooksWithoutNotifiers(registry.manager) if setup.requested else registry.hook
    engine = Engine(plan, hook, handle_signals=True)
    anyio.run(engine.run)
    code = engine.exit_code
    log = get_logger(run_id=plan.run_id, shard=str(setup.shard))
    data = (json.dumps(report_to_dict(engine.report), indent=2) + "\n").encode()
    name = report_name(plan.run_id, setup.shard)
    for store in setup.stores:
        try:
            anyio.run(store.put, name, data)
        except ReportStoreError as error:
            log.error("shard.report_failed", location=store.location, reason=str(error))
            code = code or 1
        else:
            log.info("shard.report_stored", location=store.location, report=name)
    return code
