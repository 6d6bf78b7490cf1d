"""What a run produces: an outcome per cluster and check, the steps behind it, the run report, and the
blue/green comparison's findings.

A leaf: it imports nothing else of kibertas-async, so every layer (checks, outputs, the engine, plugins
through ``kibertas_async``) may use these types without importing what produces them. The comparison's
logic (what counts as a regression) is :mod:`kibertas_async.compare`; only its result types live here,
because :class:`RunReport` carries one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


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


# How an add-on's version is written among a check's facts, so a comparison can read it back. A fact
# whose key ends in ``" version"`` (``cert-manager version``) holds an add-on's version: the version
# itself, or text starting with ``not found`` (no workload of the add-on there) or ``unknown`` (the
# lookup failed). :mod:`kibertas_async.checks.addon_version` writes them.

VERSION_FACT_SUFFIX = " version"
NOT_FOUND = "not found"
"""How a version fact starts when no workload matched: the add-on is missing there."""
UNKNOWN = "unknown"
"""How a version fact starts when the lookup failed: nothing is known either way."""


def version_fact(addon: str) -> str:
    """The fact key of ``addon``'s version: ``<addon> version``."""
    return addon + VERSION_FACT_SUFFIX


def is_version_fact(key: str) -> bool:
    """Whether a fact key names an add-on version."""
    return key.endswith(VERSION_FACT_SUFFIX)


def addon_of(key: str) -> str:
    """The add-on a version fact is about (``cert-manager version`` → ``cert-manager``)."""
    return key.removesuffix(VERSION_FACT_SUFFIX)


def is_missing(value: str) -> bool:
    """Whether a version fact says the add-on was not found."""
    return value.startswith(NOT_FOUND)


def is_known(value: str) -> bool:
    """Whether a version fact holds a version (not ``not found``, not ``unknown``)."""
    return not value.startswith((NOT_FOUND, UNKNOWN))


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


@dataclass(frozen=True)
class RunInfo:
    """What is about to run, given to ``kibertas_async_run_started``."""

    run_id: str
    started_at: datetime
    clusters: tuple[str, ...]
    checks: tuple[str, ...]


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


# The blue/green comparison's findings (computed by kibertas_async.compare).

DEFAULT_REGRESSION_FACTOR = 2.0
DEFAULT_TIMING_FLOOR = 1.0
"""Seconds: durations shorter than this count as this long when judging a slowdown."""


@dataclass(frozen=True)
class ComparisonSettings:
    """Which two clusters to compare, and how strictly."""

    old: str
    new: str
    regression_factor: float = DEFAULT_REGRESSION_FACTOR
    timing_floor: float = DEFAULT_TIMING_FLOOR


@dataclass(frozen=True)
class SideResult:
    """One check's result on one side, as much as a comparison needs."""

    outcome: Outcome
    step: str | None = None
    reason: str = ""
    steps: tuple[tuple[str, Outcome, float], ...] = ()
    """``(name, outcome, seconds)`` per step, in order."""
    facts: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, result: CheckResult) -> SideResult:
        """From a result of this run."""
        return cls(
            outcome=result.outcome,
            step=result.step,
            reason=result.reason,
            steps=tuple((step.name, step.outcome, step.duration) for step in result.steps),
            facts=dict(result.facts),
        )

    def why(self) -> str:
        """``STEP: REASON`` (or what there is of it)."""
        return f"{self.step}: {self.reason}" if self.step and self.reason else self.reason or (self.step or "")


@dataclass(frozen=True)
class Side:
    """One cluster's results: what is compared."""

    cluster: str
    results: Mapping[str, SideResult]
    """Check name → its result."""
    kubernetes_version: str | None = None
    source: str = ""
    """Where it came from: a run id, a report file."""

    @classmethod
    def of_run(cls, report: RunReport, cluster: str) -> Side:
        """One cluster of a finished run."""
        return cls(
            cluster=cluster,
            results={result.check: SideResult.of(result) for result in report.results if result.cluster == cluster},
            kubernetes_version=report.kubernetes_versions.get(cluster),
            source=f"run {report.run_id}",
        )


@dataclass(frozen=True)
class Timing:
    """One step's duration on both sides."""

    name: str
    old: float
    new: float
    regression: bool = False

    @property
    def ratio(self) -> float | None:
        """``new / old``; ``None`` when old took no measurable time."""
        return self.new / self.old if self.old > 0 else None

    def key(self, floor: float) -> bool:
        """Whether it is worth showing: either side took at least ``floor`` seconds (a wait, not a call)."""
        return max(self.old, self.new) >= floor


@dataclass(frozen=True)
class VersionPair:
    """An add-on's (or Kubernetes') version on both sides; ``None`` when that side did not report it."""

    name: str
    old: str | None
    new: str | None

    @property
    def changed(self) -> bool:
        """Both sides know a version, and they differ."""
        return (
            self.old is not None
            and self.new is not None
            and is_known(self.old)
            and is_known(self.new)
            and (self.old != self.new)
        )

    @property
    def missing_on(self) -> str | None:
        """``"old"`` or ``"new"`` when the add-on was not found there but was found on the other side."""
        if self.old is None or self.new is None:
            return None
        if is_missing(self.new) and is_known(self.old):
            return "new"
        if is_missing(self.old) and is_known(self.new):
            return "old"
        return None


@dataclass(frozen=True)
class Regression:
    """One reason the new cluster is worse than the old."""

    check: str
    kind: str
    """``outcome``, ``timing`` or ``missing``."""
    message: str


@dataclass(frozen=True)
class CheckComparison:
    """One check on both sides."""

    check: str
    old: SideResult | None
    """``None`` when the check did not run on that side."""
    new: SideResult | None
    timings: tuple[Timing, ...] = ()
    versions: tuple[VersionPair, ...] = ()
    regressions: tuple[Regression, ...] = ()


@dataclass(frozen=True)
class Comparison:
    """The whole comparison of two sides."""

    settings: ComparisonSettings
    old_source: str
    new_source: str
    kubernetes: VersionPair
    checks: tuple[CheckComparison, ...]

    @property
    def regressions(self) -> list[Regression]:
        """Every regression, check by check."""
        return [regression for check in self.checks for regression in check.regressions]

    @property
    def ok(self) -> bool:
        """No regression."""
        return not self.regressions

    @property
    def version_changes(self) -> list[tuple[str, VersionPair]]:
        """``(check, pair)`` for every version that differs; the check is ``""`` for Kubernetes itself."""
        changes = [("", self.kubernetes)] if self.kubernetes.changed else []
        return changes + [(check.check, pair) for check in self.checks for pair in check.versions if pair.changed]

    def verdict(self) -> str:
        """One line: ``OK: new (cluster) has no regression against old`` or ``NG: 2 regressions ...``."""
        old, new = self.settings.old, self.settings.new
        count = len(self.regressions)
        if not count:
            return f"OK: {new} has no regression against {old}"
        return f"NG: {new} has {count} regression{'s' if count != 1 else ''} against {old}"
