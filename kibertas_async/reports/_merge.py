"""One run report from the shard reports of a sharded run: a pure function of the reports.

The merged report holds every shard's results, in the run's cluster and check order. A shard that sent
no report is never dropped: the report says so (``shard.missing``, which makes it not OK), and each
check that shard was to run appears as an ERROR result naming the shard, so the JUnit file, the
summary table and the message all show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from kibertas_async.errors import UsageError
from kibertas_async.results import CheckResult, Outcome, PluginProblem, RunReport, ShardInfo


def missing_reason(index: int, count: int, why: str = "sent no report") -> str:
    """The reason given for each check of a missing shard."""
    return f"shard {index}/{count} {why}: whether this check ran, and how it ended, is unknown"


def merge_reports(
    run_id: str,
    reports: Sequence[RunReport],
    *,
    count: int | None = None,
    why_missing: Mapping[int, str] | None = None,
) -> RunReport:
    """Combine the shard reports of run ``run_id``.

    :param reports: the shard reports found (any order); each must carry its shard.
    :param count: N when known from elsewhere (``--shards``); otherwise the reports' own.
    :param why_missing: for missing shards, why (``report unreadable: ...``); default "sent no report".
    :raises UsageError: the reports do not belong together: another run, another N, another matrix (the
        shards were not given the same clusters and checks), or one shard twice.
    """
    by_index: dict[int, RunReport] = {}
    assignment: tuple[tuple[tuple[str, str], ...], ...] | None = None
    for report in reports:
        info = report.shard
        if info is None or info.index is None:
            raise UsageError(f"a report of run {report.run_id} is not a shard's report (it has no shard index)")
        if report.run_id != run_id:
            raise UsageError(f"shard {info.index}/{info.count} is of run {report.run_id}, not {run_id}")
        if count is None:
            count = info.count
        elif info.count != count:
            raise UsageError(f"run {run_id}: shard {info.index} says there are {info.count} shards, expected {count}")
        if assignment is None:
            assignment = info.assignment
        elif info.assignment != assignment:
            raise UsageError(
                f"run {run_id}: the shards' reports disagree on which shard runs what; were they all given the "
                "same clusters and checks?"
            )
        if info.index in by_index:
            raise UsageError(f"run {run_id}: two reports of shard {info.index}/{count}")
        by_index[info.index] = report
    if count is None:
        raise ValueError("no reports and no count: nothing to merge")
    reasons = dict(why_missing or {})
    missing = tuple(index for index in range(1, count + 1) if index not in by_index)
    present = [by_index[index] for index in sorted(by_index)]

    cells = [cell for shard_cells in assignment or () for cell in shard_cells]
    clusters = list(dict.fromkeys([cell[0] for cell in cells] + [n for r in present for n in r.clusters]))
    checks = list(dict.fromkeys([cell[1] for cell in cells] + [n for r in present for n in r.checks]))
    started_at = min((report.started_at for report in present), default=datetime.now(UTC))
    ended_at = max((report.started_at + timedelta(seconds=report.duration) for report in present), default=started_at)
    results = [result for report in present for result in report.results]
    for index in missing:
        reason = missing_reason(index, count, reasons.get(index, "sent no report"))
        # With no shard's report at all, nobody knows what the missing shards were to run.
        for cluster, check in assignment[index - 1] if assignment is not None else ():
            results.append(CheckResult(check, cluster, Outcome.ERROR, started_at, reason=reason))
    results.sort(key=lambda r: (clusters.index(r.cluster), checks.index(r.check)))
    problems: list[PluginProblem] = []
    for report in present:
        for problem in report.plugin_problems:
            if all((p.plugin, p.hook, p.error) != (problem.plugin, problem.hook, problem.error) for p in problems):
                problems.append(problem)
    return RunReport(
        run_id=run_id,
        started_at=started_at,
        clusters=clusters,
        checks=checks,
        results=results,
        duration=(ended_at - started_at).total_seconds(),
        interrupted_by=next((r.interrupted_by for r in present if r.interrupted_by), None),
        plugin_problems=problems,
        kubernetes_versions={k: v for report in present for k, v in report.kubernetes_versions.items()},
        shard=ShardInfo(count=count, assignment=assignment or (), merged=tuple(sorted(by_index)), missing=missing),
    )
