"""What a run produces: an outcome per cluster and check, the steps behind it, and the run report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kibertas_async.compare import Comparison


class Outcome(enum.Enum):
    """How one check ended on one cluster."""

    PASSED = "passed"
    """The add-on works: every step succeeded."""
    FAILED = "failed"
    """The add-on does not work (NG): a step observed something wrong."""
    ERROR = "error"
    """The check could not do its job: an unexpected exception, an unreachable cluster, a broken plugin."""
    TIMEOUT = "timeout"
    """A step, the check or the run ran out of time; ``step`` names what was waiting."""
    SKIPPED = "skipped"
    """The check does not apply here, or the run was stopped before it started."""
    CANCELLED = "cancelled"
    """A step only, never a check: stopped from outside by something other than a deadline (a sibling
    task failed, a signal arrived)."""

    @property
    def ok(self) -> bool:
        """Whether this outcome lets the run exit 0."""
        return self in (Outcome.PASSED, Outcome.SKIPPED)


CHECK_OUTCOMES = (Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT, Outcome.SKIPPED)
"""The outcomes a check can end with (``CANCELLED`` is for steps only)."""


@dataclass
class StepResult:
    """One named step of a check, as it happened."""

    name: str
    started_at: datetime
    duration: float = 0.0
    outcome: Outcome = Outcome.PASSED
    detail: str = ""
    """The last thing the step observed (e.g. ``0/1 replicas ready``): explains a timeout."""


@dataclass
class CleanupResult:
    """One object or action the check registered for cleanup."""

    description: str
    status: str
    """``done``, ``failed``, ``timed out``, ``kept`` (``--keep``) or ``abandoned`` (second signal)."""
    detail: str = ""

    @property
    def left_behind(self) -> bool:
        """Whether this may still exist in the cluster."""
        return self.status != "done"


@dataclass
class Diagnostic:
    """One thing an SRE would look at next, collected when a check did not pass (bounded, redacted)."""

    source: str
    """Where it comes from: ``events ingress-test-abc``, ``pod kube-system/external-dns-xyz``,
    ``log kube-system/external-dns-xyz``, ``waited on Ingress ns/name``."""
    title: str
    """One line: the most telling summary."""
    lines: list[str] = field(default_factory=list)
    """The detail, bounded (:mod:`kibertas_async.diagnostics`)."""


@dataclass
class CheckResult:
    """The outcome of one check on one cluster."""

    check: str
    cluster: str
    outcome: Outcome
    started_at: datetime
    duration: float = 0.0
    step: str | None = None
    """The step that failed or was waiting, when the outcome is not PASSED."""
    reason: str = ""
    """Why, for a human; empty when PASSED."""
    steps: list[StepResult] = field(default_factory=list)
    cleanup: list[CleanupResult] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    """What the check wants reported on success too (e.g. which node joined, how long the scale-up took)."""
    api_requests: int = 0
    """How many Kubernetes API requests the check (and its cleanup) sent; a watch counts once."""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    """What was collected when the check FAILED, ERRORed or TIMED OUT (events, pods, the add-on's log,
    the object a step waited on), most telling first; empty when it passed or was skipped."""

    @property
    def left_behind(self) -> list[CleanupResult]:
        """Cleanup actions that did not finish, so their objects may remain."""
        return [item for item in self.cleanup if item.left_behind]


@dataclass
class PluginProblem:
    """A plugin that failed: it could not be loaded (its checks did not run), or one of its hooks or the
    reporter it registered raised (the run went on without it)."""

    plugin: str
    error: str
    hook: str = ""
    """The hook (or ``Reporter.write``) that raised; empty when the plugin failed to load."""

    def describe(self) -> str:
        """One line for people: ``plugin X failed to load: ...`` or ``plugin X: hook H raised ...``."""
        if self.hook:
            return f"plugin {self.plugin}: {self.hook} raised {self.error}"
        return f"plugin {self.plugin} failed to load: {self.error}"


@dataclass(frozen=True)
class ShardInfo:
    """Where a report stands in a sharded run (``run --shard I/N``, :mod:`kibertas_async.shards`).

    A shard's own report has its ``index``; the merged report of the run (``report merge``) has none,
    and lists which shards it holds and which never reported.
    """

    count: int
    """N: how many shards the run was split into."""
    assignment: tuple[tuple[tuple[str, str], ...], ...]
    """Every shard's (cluster, check) pairs, shard 1 first: what each was to run, so a merge knows what
    a missing shard's results would have been."""
    index: int | None = None
    """I (1 to N) in a shard's report; ``None`` in a merged one."""
    merged: tuple[int, ...] = ()
    """In a merged report: the shards whose reports it combines."""
    missing: tuple[int, ...] = ()
    """In a merged report: the shards that sent no report. Any makes the report not OK."""


@dataclass
class RunReport:
    """Everything about one run: what the notifiers send and the reporters write."""

    run_id: str
    started_at: datetime
    clusters: list[str]
    checks: list[str]
    results: list[CheckResult] = field(default_factory=list)
    duration: float = 0.0
    interrupted_by: str | None = None
    """``SIGINT`` or ``SIGTERM`` when a signal stopped the run."""
    plugin_problems: list[PluginProblem] = field(default_factory=list)
    shard: ShardInfo | None = None
    """Set when the run was sharded: this shard's place, or, merged, which shards reported."""
    kubernetes_versions: dict[str, str] = field(default_factory=dict)
    """Cluster → its API server's ``gitVersion`` (``GET /version``), for each cluster a check connected to."""
    comparison: Comparison | None = None
    """The blue/green comparison of two of the clusters (``run --compare old,new``), once every check ended."""

    @property
    def ok(self) -> bool:
        """Every check passed or was skipped, no plugin broke, no signal stopped the run, (merged
        from shards) no shard is missing, and a comparison (``--compare``) found no regression."""
        return (
            all(result.outcome.ok for result in self.results)
            and not self.plugin_problems
            and self.interrupted_by is None
            and (self.shard is None or not self.shard.missing)
            and (self.comparison is None or self.comparison.ok)
        )

    def counts(self) -> dict[Outcome, int]:
        """How many results have each check outcome (every one present, zero included)."""
        counts = dict.fromkeys(CHECK_OUTCOMES, 0)
        for result in self.results:
            counts[result.outcome] += 1
        return counts
