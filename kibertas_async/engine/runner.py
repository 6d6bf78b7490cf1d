"""The engine: every check on every cluster, concurrently, in one anyio task group.

Limits: a global one (``--concurrency``), one per cluster (``--cluster-concurrency``), and a lock per
cluster for checks that declare the same ``exclusive`` group. Deadlines: per step (the check's own),
per check, per run. Cleanup always runs, shielded and time-boxed; a first SIGINT/SIGTERM cancels the
checks (their cleanup still runs), a second abandons cleanup.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.abc

from kibertas_async.checks import Check, CheckContext, CleanupGuard, CleanupStack
from kibertas_async.checks.addon_version import Workload
from kibertas_async.compare import ComparisonSettings, compare_run
from kibertas_async.diagnostics import AddonWorkload, DiagnosticsContext, collect_diagnostics
from kibertas_async.engine import settings
from kibertas_async.errors import (
    CheckError,
    CheckFailed,
    CheckSkipped,
    KibertasError,
    StepTimeout,
    primary_exception,
)
from kibertas_async.events import EVENT_REDACTION, SecretRedactor, bind_context, environment_secrets, get_logger
from kibertas_async.hookcalls import call_each
from kibertas_async.kube import ClusterTarget, ClusterUnreachable, KubeApiError, KubeClient, KubeUnavailable, connect
from kibertas_async.options import OptionValues
from kibertas_async.outputs import Notifier, RunInfo
from kibertas_async.results import (
    CheckResult,
    CleanupResult,
    Outcome,
    PluginProblem,
    RunReport,
    ShardInfo,
)

SIGNAL_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}
DIAGNOSED_OUTCOMES = (Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT)
"""The outcomes whose results get failure diagnostics (:mod:`kibertas_async.diagnostics`)."""


@dataclass
class RunPlan:
    """Everything decided before the first check starts."""

    run_id: str
    clusters: list[ClusterTarget]
    checks: list[type[Check]]
    cluster_options: Mapping[str, OptionValues]
    run_options: OptionValues
    plugin_problems: list[PluginProblem]
    comparison: ComparisonSettings | None = None
    """``--compare old,new``: compare those two clusters' results once every check ended."""
    cells: frozenset[tuple[str, str]] | None = None
    """The (cluster, check) pairs to run, when not every check on every cluster: one shard's share of a
    sharded run (:mod:`kibertas_async.shards`). ``None`` runs the whole matrix."""
    shard: ShardInfo | None = None
    """Which shard of a sharded run this is; the report carries it."""


class ClusterSession:
    """One cluster's connection, opened once (by the first check that needs it) and shared."""

    def __init__(self, target: ClusterTarget, connect_timeout: float, redactor: SecretRedactor) -> None:
        self.target = target
        self._connect_timeout = connect_timeout
        self._redactor = redactor
        self._lock = anyio.Lock()
        self._client: KubeClient | None = None
        self._error: ClusterUnreachable | None = None
        self.kubernetes_version: str | None = None
        """The API server's ``gitVersion``, once connected (``None`` if it could not be read)."""

    async def client(self) -> KubeClient:
        """The connected client; raises :class:`ClusterUnreachable` (every time) if it cannot connect."""
        async with self._lock:
            if self._client is None and self._error is None:
                try:
                    self._client = await connect(self.target, timeout=self._connect_timeout)
                    # An exec plugin's token is known only now; it must not appear in any output either.
                    self._redactor.add(self._client.credentials())
                    self.kubernetes_version = await _kubernetes_version(self._client, self._connect_timeout)
                    get_logger(cluster=self.target.name).info(
                        "cluster.connected", kubernetes_version=self.kubernetes_version
                    )
                except ClusterUnreachable as error:
                    self._error = error
            if self._error is not None:
                raise self._error
            assert self._client is not None
            return self._client

    async def aclose(self) -> None:
        """Close the connection, if one was opened."""
        if self._client is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._client.aclose()


class Engine:
    """Runs a :class:`RunPlan` and produces a :class:`RunReport`."""

    def __init__(self, plan: RunPlan, hook: Any, *, handle_signals: bool = False) -> None:
        self.plan = plan
        self.hook = hook
        self.guard = CleanupGuard()
        self._handle_signals = handle_signals
        self._stop_reason: str | None = None
        self._run_scope: anyio.CancelScope | None = None
        options = plan.run_options
        self._global_limit = anyio.CapacityLimiter(options[settings.CONCURRENCY])
        self._cluster_limits = {
            target.name: anyio.CapacityLimiter(options[settings.CLUSTER_CONCURRENCY]) for target in plan.clusters
        }
        self._exclusive_locks: dict[tuple[str, str], anyio.Lock] = {}
        self._run_state: dict[str, Any] = {}
        """What the checks of this run share (``ctx.run_state``)."""
        self.redactor = SecretRedactor()
        """This run's secrets (its options', its kubeconfigs', the environment's, its clusters'
        credentials): its results are redacted with it, and so is every event while the run lives."""
        EVENT_REDACTION.cover(self.redactor)
        self._sessions = {
            target.name: ClusterSession(target, options[settings.CONNECT_TIMEOUT], self.redactor)
            for target in plan.clusters
        }
        self.report = RunReport(
            run_id=plan.run_id,
            started_at=datetime.now(UTC),
            clusters=[target.name for target in plan.clusters],
            checks=[check.name for check in plan.checks],
            plugin_problems=list(plan.plugin_problems),
            shard=plan.shard,
        )
        self.log = get_logger(run_id=plan.run_id)
        self._learn_secrets()
        for problem in self.report.plugin_problems:
            problem.error = self.redactor.text(problem.error)
        self._run_deadline = math.inf

    def _learn_secrets(self) -> None:
        """Every secret this run may meet, before anything is logged: secret option values, the
        kubeconfig's credentials, cloud and SaaS keys in the environment."""
        from kibertas_async.clusters.credentials import kubeconfig_secrets
        from kibertas_async.clusters.selection import kubeconfig_paths

        for values in [self.plan.run_options, *self.plan.cluster_options.values()]:
            self.redactor.add(values.secrets())
        self.redactor.add(environment_secrets(os.environ))
        files = {
            path
            for target in self.plan.clusters
            if not target.in_cluster
            for path in kubeconfig_paths(target.kubeconfig, os.environ)
        }
        in_cluster = any(target.in_cluster for target in self.plan.clusters)
        self.redactor.add(kubeconfig_secrets(sorted(files), in_cluster=in_cluster))

    def _call_hook(self, caller: Any, **kwargs: Any) -> list[Any]:
        """Call one hook plugin by plugin; a plugin whose implementation raises is a plugin problem
        (logged, exit code 1) and the run goes on."""
        problems: list[Any] = []
        answers = call_each(caller, problems, **kwargs)
        for problem in problems:
            self._plugin_failed(problem)
        return answers

    def _plugin_failed(self, problem: PluginProblem) -> None:
        """Record a plugin's failure once per plugin and hook (``check_finished`` may fail for every check)."""
        if any((p.plugin, p.hook) == (problem.plugin, problem.hook) for p in self.report.plugin_problems):
            return
        problem.error = self.redactor.text(problem.error)
        self.report.plugin_problems.append(problem)
        self.log.error("plugin.failed", plugin=problem.plugin, hook=problem.hook, reason=problem.error)

    @property
    def exit_code(self) -> int:
        """0 all passed (skips allowed), 1 anything else, 130/143 stopped by SIGINT/SIGTERM."""
        if self.report.interrupted_by is not None:
            return SIGNAL_EXIT_CODES.get(self.report.interrupted_by, 1)
        return 0 if self.report.ok else 1

    async def run(self) -> RunReport:
        """Run every check on every cluster, then the reporters and notifiers."""
        started = anyio.current_time()
        self.log.info("run.started", clusters=self.report.clusters, checks=self.report.checks)
        for problem in self.report.plugin_problems:
            self.log.error("plugin.failed", plugin=problem.plugin, hook=problem.hook, reason=problem.error)
        self._call_hook(
            self.hook.kibertas_async_run_started,
            run=RunInfo(
                run_id=self.plan.run_id,
                started_at=self.report.started_at,
                clusters=tuple(self.report.clusters),
                checks=tuple(self.report.checks),
            ),
        )
        run_timeout = self.plan.run_options[settings.RUN_TIMEOUT]
        self._run_deadline = started + run_timeout
        try:
            async with anyio.create_task_group() as supervisor:
                if self._handle_signals:
                    # Listening before the first check starts: a signal can never meet a check unguarded.
                    await supervisor.start(self._watch_signals)
                with anyio.CancelScope(deadline=self._run_deadline) as run_scope:
                    self._run_scope = run_scope
                    async with anyio.create_task_group() as checks:
                        for target in self.plan.clusters:
                            for check in self.plan.checks:
                                if self.plan.cells is not None and (target.name, check.name) not in self.plan.cells:
                                    continue
                                checks.start_soon(self._run_check, target, check, name=f"{target.name}/{check.name}")
                supervisor.cancel_scope.cancel()
        finally:
            for session in self._sessions.values():
                await session.aclose()
        self.report.duration = anyio.current_time() - started
        self.report.results.sort(
            key=lambda r: (self.report.clusters.index(r.cluster), self.report.checks.index(r.check))
        )
        self.report.kubernetes_versions = {
            name: session.kubernetes_version for name, session in self._sessions.items() if session.kubernetes_version
        }
        if self.plan.comparison is not None:
            self.report.comparison = compare_run(self.report, self.plan.comparison)
        counts = {outcome.value: count for outcome, count in self.report.counts().items() if count}
        self.log.info(
            "run.finished",
            outcome="passed" if self.report.ok else "failed",
            duration=round(self.report.duration, 3),
            counts=counts,
            **({"interrupted_by": self.report.interrupted_by} if self.report.interrupted_by else {}),
        )
        self._call_hook(self.hook.kibertas_async_run_finished, report=self.report)
        await self.deliver()
        return self.report

    # --- signals -----------------------------------------------------------------------------

    async def _watch_signals(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            task_status.started()
            async for signum in received:
                name = signal.Signals(signum).name
                if self.report.interrupted_by is None:
                    self.report.interrupted_by = name
                    self._stop_reason = f"interrupted by {name}"
                    self.log.warning("run.interrupted", signal=name, hint="send it again to abandon cleanup")
                    if self._run_scope is not None:
                        self._run_scope.cancel()
                else:
                    self.log.error("cleanup.abandoned", signal=name)
                    self.guard.abandon()

    # --- one check on one cluster -------------------------------------------------------------

    async def _run_check(self, target: ClusterTarget, check: type[Check]) -> None:
        # This task's own context: every event logged in it, and in the tasks it starts, names the check.
        bind_context(run_id=self.plan.run_id, cluster=target.name, check=check.name)
        result = CheckResult(
            check=check.name, cluster=target.name, outcome=Outcome.SKIPPED, started_at=datetime.now(UTC)
        )
        exclusive = _Exclusive(
            self._exclusive_locks.setdefault((target.name, check.exclusive), anyio.Lock())
            if check.exclusive is not None
            else None
        )
        try:
            async with contextlib.AsyncExitStack() as limits:
                await exclusive.acquire()
                limits.callback(exclusive.release)
                await limits.enter_async_context(self._cluster_limits[target.name])
                await limits.enter_async_context(self._global_limit)
                await self._execute(target, check, result, exclusive.release)
        except anyio.get_cancelled_exc_class():
            if result.outcome is Outcome.SKIPPED and not result.reason:
                result.reason = f"not started: {self._cancel_reason()}"
            raise
        finally:
            _redact_result(result, self.redactor)
            self.report.results.append(result)
            self._call_hook(self.hook.kibertas_async_check_finished, result=result)

    def _run_deadline_passed(self) -> bool:
        return anyio.current_time() >= self._run_deadline

    def _cancel_reason(self) -> str:
        if self._stop_reason is not None:
            return self._stop_reason
        if self._run_deadline_passed():
            return f"run timeout of {self.plan.run_options[settings.RUN_TIMEOUT]:g}s reached"
        return "cancelled by the engine (no deadline had passed)"

    async def _execute(
        self, target: ClusterTarget, check: type[Check], result: CheckResult, undone: Callable[[], None]
    ) -> None:
        """Run one check and its cleanup, filling in ``result`` (also when cancelled from outside);
        ``undone`` is called once every object the check made is deleted (only waits are left)."""
        options = self.plan.cluster_options[target.name]
        timeout = options[settings.CHECK_TIMEOUT] or check.timeout
        log = get_logger(run_id=self.plan.run_id, cluster=target.name, check=check.name)
        cleanup = CleanupStack(
            keep=self.plan.run_options[settings.KEEP],
            action_timeout=self.plan.run_options[settings.CLEANUP_TIMEOUT],
            guard=self.guard,
        )
        result.outcome, result.started_at = Outcome.ERROR, datetime.now(UTC)
        started = anyio.current_time()
        ctx: CheckContext | None = None
        log.info("check.started", timeout=timeout)
        try:
            check_deadline = started + timeout
            with anyio.CancelScope(deadline=check_deadline) as check_scope:
                try:
                    kube = (await self._sessions[target.name].client()).view() if check.needs_kubernetes else None
                except ClusterUnreachable as error:
                    result.step, result.reason = "connect to cluster", str(error)
                else:
                    ctx = CheckContext(
                        run_id=self.plan.run_id,
                        check_name=check.name,
                        cluster=target,
                        options=options,
                        log=log,
                        cleanup=cleanup,
                        kube=kube,
                        deadline=min(check_deadline, self._run_deadline),
                        redactor=self.redactor,
                        run_state=self._run_state,
                    )
                    try:
                        await check().run(ctx)
                    except Exception as raised:
                        _record_exception(result, primary_exception(raised), ctx)
                    else:
                        result.outcome = Outcome.PASSED
            if check_scope.cancelled_caught:
                waiting = _waiting_step(ctx)
                result.outcome, result.step = Outcome.TIMEOUT, waiting
                where = f"; step '{waiting}' was still running" if waiting else ""
                result.reason = f"check did not finish within {timeout:g}s{where}{_last_seen(ctx, waiting)}"
        except anyio.get_cancelled_exc_class():
            # Cancelled from outside the check: TIMEOUT only when the run's deadline passed.
            waiting = _waiting_step(ctx)
            timed_out = self._stop_reason is None and self._run_deadline_passed()
            result.outcome, result.step = (Outcome.TIMEOUT if timed_out else Outcome.ERROR), waiting
            result.reason = self._cancel_reason() + (f" during step '{waiting}'" if waiting else "")
            await self._finish(result, ctx, cleanup, started, log, undone)
            raise
        await self._finish(result, ctx, cleanup, started, log, undone)

    async def _finish(
        self,
        result: CheckResult,
        ctx: CheckContext | None,
        cleanup: CleanupStack,
        started: float,
        log: Any,
        undone: Callable[[], None],
    ) -> None:
        def log_cleanup(item: CleanupResult) -> None:
            level = log.info if item.status in ("done", "kept") else log.warning
            level(
                "cleanup." + item.status.replace(" ", "_"),
                action=item.description,
                detail=item.detail or None,
            )

        if ctx is not None:
            await self._diagnose(result, ctx)
        result.cleanup = await cleanup.run(on_result=log_cleanup, on_undone=undone)
        result.duration = anyio.current_time() - started
        by_verb: dict[str, int] = {}
        if ctx is not None:
            result.steps = list(ctx.results)
            result.facts = dict(ctx.facts)
            if ctx._kube is not None:
                result.api_requests = ctx._kube.requests_made
                by_verb = dict(sorted(ctx._kube.requests_by_verb.items()))
        log.info(
            "check.finished",
            outcome=result.outcome.value,
            duration=round(result.duration, 3),
            **({"api_requests_by_verb": by_verb} if by_verb else {}),
            **({"step": result.step} if result.step else {}),
            **({"reason": result.reason} if result.reason else {}),
            **({"left_behind": [item.description for item in result.left_behind]} if result.left_behind else {}),
        )

    async def _diagnose(self, result: CheckResult, ctx: CheckContext) -> None:
        """Attach what the plugins' diagnostics sources find to a FAILED, ERROR or TIMEOUT result, before
        cleanup removes the objects they look at; within the diagnostics' own time box, shielded. Not
        after a signal: then cleanup must not wait for anything."""
        if result.outcome not in DIAGNOSED_OUTCOMES or self._stop_reason is not None or self.guard.abandoned:
            return
        check = next(check for check in self.plan.checks if check.name == ctx.check_name)
        addons = tuple(
            AddonWorkload(option.name.removesuffix("-workload"), value)
            for option in check.options
            if isinstance(value := ctx.options[option], Workload)
        )
        context = DiagnosticsContext(
            result=result,
            kube=ctx._kube,
            options=ctx.options,
            steps=tuple(ctx.results),
            namespaces=tuple(ctx.namespaces),
            addons=addons,
            waited_on=ctx.waited_on,
        )
        sources = [
            (answer.plugin, source)
            for answer in self._call_hook(self.hook.kibertas_async_register_diagnostics, result=result)
            for source in answer.value
        ]
        result.diagnostics = await collect_diagnostics(
            sources, context, redactor=self.redactor, on_problem=self._plugin_failed
        )
        ctx.log.info("check.diagnosed", diagnostics=[f"{d.source}: {d.title}" for d in result.diagnostics])

    # --- outputs -------------------------------------------------------------------------------

    async def deliver(self) -> None:
        """Hand ``self.report`` to the reporters and notifiers, as at the end of every run (``report
        merge`` calls it with the merged report of a sharded run, so that one message is sent)."""
        # Both registration hooks first, so a plugin failing in either is in every report.
        reporter_answers = self._call_hook(self.hook.kibertas_async_register_reporters, options=self.plan.run_options)
        notifiers: list[Notifier] = [
            notifier
            for answer in self._call_hook(self.hook.kibertas_async_register_notifiers, options=self.plan.run_options)
            for notifier in answer.value
        ]
        # pluggy calls last-registered first; report in load order.
        for answer in reversed(reporter_answers):
            for reporter in answer.value:
                try:
                    reporter.write(self.report)
                except Exception as error:
                    name = getattr(reporter, "name", type(reporter).__name__)
                    self._plugin_failed(
                        PluginProblem(answer.plugin, f"{type(error).__name__}: {error}", f"reporter {name!r} write")
                    )
        if not notifiers:
            return
        limit = self.plan.run_options[settings.NOTIFY_TIMEOUT]
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as group:
                for notifier in notifiers:
                    group.start_soon(self._notify, notifier, limit)

    async def _notify(self, notifier: Notifier, limit: float) -> None:
        try:
            with anyio.fail_after(limit):
                await notifier.notify(self.report)
        except TimeoutError:
            self.log.error("notifier.failed", notifier=notifier.name, reason=f"did not finish within {limit:g}s")
        except Exception as error:
            reason = self.redactor.text(f"{type(error).__name__}: {error}")
            self.log.error("notifier.failed", notifier=notifier.name, reason=reason)
        else:
            self.log.info("notifier.finished", notifier=notifier.name)


async def _kubernetes_version(client: KubeClient, timeout: float) -> str | None:
    """``GET /version``'s ``gitVersion``: reported once per cluster, never required (``None`` if unread)."""
    with anyio.move_on_after(timeout):
        try:
            answer = await client.request("GET", "/version", timeout=timeout)
        except (KubeApiError, KubeUnavailable):
            return None
        version = answer.get("gitVersion")
        return str(version) if version else None
    return None


def _redact_result(result: CheckResult, redactor: Any) -> None:
    """Blank every secret in what a result says, before any hook, reporter or notifier sees it."""
    result.reason = redactor.text(result.reason)
    if result.step:
        result.step = redactor.text(result.step)
    result.facts = {redactor.text(key): redactor.text(value) for key, value in result.facts.items()}
    for step in result.steps:
        step.name = redactor.text(step.name)
        step.detail = redactor.text(step.detail)
    for item in result.cleanup:
        item.description = redactor.text(item.description)
        item.detail = redactor.text(item.detail)
    for diagnostic in result.diagnostics:
        diagnostic.source, diagnostic.title = redactor.text(diagnostic.source), redactor.text(diagnostic.title)
        diagnostic.lines = [redactor.text(line) for line in diagnostic.lines]


def _record_exception(result: CheckResult, error: BaseException, ctx: CheckContext) -> None:
    if isinstance(error, CheckError):
        result.step = error.step
        result.reason = error.reason
        if isinstance(error, StepTimeout):
            result.outcome = Outcome.TIMEOUT
        elif isinstance(error, CheckFailed):
            result.outcome = Outcome.FAILED
        elif isinstance(error, CheckSkipped):
            result.outcome = Outcome.SKIPPED
        return
    result.outcome = Outcome.ERROR
    result.step = _failed_step(ctx)
    result.reason = f"{type(error).__name__}: {error}"
    if isinstance(error, KibertasError):
        # An error we raise on purpose (a 403 from the API server, an unreachable cluster) says all in
        # its message; a traceback is for the unexpected.
        ctx.log.error("check.crashed", step=result.step, reason=ctx.redact(result.reason))
    else:
        ctx.log.error("check.crashed", exc_info=error)


def _failed_step(ctx: CheckContext) -> str | None:
    for step in reversed(ctx.results):
        if step.outcome is Outcome.ERROR:
            return step.name
    return None


def _waiting_step(ctx: CheckContext | None) -> str | None:
    """The innermost step that was interrupted by a deadline or signal."""
    if ctx is None:
        return None
    for step in reversed(ctx.results):
        if step.outcome in (Outcome.TIMEOUT, Outcome.CANCELLED):
            return step.name
    return None


def _last_seen(ctx: CheckContext | None, step_name: str | None) -> str:
    if ctx is None or step_name is None:
        return ""
    for step in reversed(ctx.results):
        if step.name == step_name and step.detail:
            return f" (last seen: {step.detail})"
    return ""


class _Exclusive:
    """A check's hold on its ``exclusive`` group's lock on one cluster (none: a check without a group).

    Released as soon as the check's objects are deleted, before its cleanup waits for its namespaces to
    disappear (the namespace controller takes 5 s to start on a deleted namespace): the next check of the
    group need not wait for that. Releasing twice is a no-op.
    """

    def __init__(self, lock: anyio.Lock | None) -> None:
        self._lock = lock
        self._held = False

    async def acquire(self) -> None:
        if self._lock is not None:
            await self._lock.acquire()
            self._held = True

    def release(self) -> None:
        if self._lock is not None and self._held:
            self._held = False
            self._lock.release()
