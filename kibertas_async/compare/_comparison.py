"""Blue/green comparison: the same checks on an old and a new cluster, side by side.

Per check: both outcomes, the step durations with their ratio (new / old), and the add-on versions the
check reported (facts named ``<add-on> version``, :mod:`kibertas_async.results`); for the
clusters, their Kubernetes versions. A **regression** is

- ``outcome``: the check did not pass on new where it passed on old;
- ``timing``: a step that passed on both took more than ``regression_factor`` times as long on new
  (durations under ``timing_floor`` count as the floor, so sub-second noise is never a regression);
- ``missing``: an add-on found on one side is not found on the other.

A version that differs is shown, never a regression by itself: upgrading is the point.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kibertas_async.results import (
    CheckComparison,
    Comparison,
    ComparisonSettings,
    Outcome,
    Regression,
    RunReport,
    Side,
    SideResult,
    Timing,
    VersionPair,
    addon_of,
    is_version_fact,
)


def compare(old: Side, new: Side, settings: ComparisonSettings) -> Comparison:
    """Compare two sides check by check (in the old side's order, then checks only new ran)."""
    names = list(dict.fromkeys([*old.results, *new.results]))
    return Comparison(
        settings=settings,
        old_source=old.source,
        new_source=new.source,
        kubernetes=VersionPair("kubernetes", old.kubernetes_version, new.kubernetes_version),
        checks=tuple(_compare_check(name, old.results.get(name), new.results.get(name), settings) for name in names),
    )


def compare_run(report: RunReport, settings: ComparisonSettings) -> Comparison:
    """Compare two clusters of one run."""
    return compare(Side.of_run(report, settings.old), Side.of_run(report, settings.new), settings)


def _compare_check(
    name: str, old: SideResult | None, new: SideResult | None, settings: ComparisonSettings
) -> CheckComparison:
    regressions: list[Regression] = []
    if old is not None and new is not None and old.outcome is Outcome.PASSED and new.outcome is not Outcome.PASSED:
        mark = _MARKS[new.outcome]
        why = f" ({new.why()})" if new.why() else ""
        regressions.append(Regression(name, "outcome", f"{name}: {mark} on {settings.new}{why}, OK on {settings.old}"))
    timings = tuple(_timings(old, new, settings)) if old is not None and new is not None else ()
    for timing in timings:
        if timing.regression:
            regressions.append(
                Regression(
                    name,
                    "timing",
                    f"{name}: step '{timing.name}' took {timing.new:.1f}s on {settings.new}, "
                    f"{_ratio(timing)} the {timing.old:.1f}s on {settings.old}",
                )
            )
    versions = tuple(_versions(old, new))
    for pair in versions:
        if pair.missing_on is not None:
            there = settings.old if pair.missing_on == "new" else settings.new
            absent = settings.new if pair.missing_on == "new" else settings.old
            found = pair.old if pair.missing_on == "new" else pair.new
            regressions.append(
                Regression(name, "missing", f"{name}: {pair.name} not found on {absent} ({found} on {there})")
            )
    return CheckComparison(name, old, new, timings, versions, tuple(regressions))


def _step_durations(result: SideResult) -> dict[str, float]:
    """Passed steps by name (the first of a repeated name)."""
    durations: dict[str, float] = {}
    for step_name, outcome, seconds in result.steps:
        if outcome is Outcome.PASSED:
            durations.setdefault(step_name, seconds)
    return durations


def _timings(old: SideResult, new: SideResult, settings: ComparisonSettings) -> Iterable[Timing]:
    before, after = _step_durations(old), _step_durations(new)
    for step_name, old_seconds in before.items():
        if step_name not in after:
            continue
        new_seconds = after[step_name]
        floor = settings.timing_floor
        slower = max(new_seconds, floor) > settings.regression_factor * max(old_seconds, floor)
        yield Timing(step_name, old_seconds, new_seconds, regression=slower)


def _versions(old: SideResult | None, new: SideResult | None) -> Iterable[VersionPair]:
    old_facts = old.facts if old is not None else {}
    new_facts = new.facts if new is not None else {}
    for key in dict.fromkeys([*old_facts, *new_facts]):
        if is_version_fact(key):
            yield VersionPair(addon_of(key), old_facts.get(key), new_facts.get(key))


def _ratio(timing: Timing) -> str:
    ratio = timing.ratio
    return f"{ratio:.1f}x" if ratio is not None else "far more than"


_MARKS = {
    Outcome.PASSED: "OK",
    Outcome.FAILED: "NG",
    Outcome.ERROR: "ERROR",
    Outcome.TIMEOUT: "TIMEOUT",
    Outcome.SKIPPED: "SKIP",
    Outcome.CANCELLED: "CANCELLED",
}


def outcome_mark(result: SideResult | None) -> str:
    """``OK``, ``NG``, ``ERROR``, ``TIMEOUT``, ``SKIP``, or ``-`` when the check did not run there."""
    return "-" if result is None else _MARKS[result.outcome]


def comparison_to_dict(comparison: Comparison) -> dict[str, Any]:
    """The ``comparison`` section of the JSON report (docs/report-schema.md)."""
    settings = comparison.settings
    return {
        "old": settings.old,
        "new": settings.new,
        "old_source": comparison.old_source,
        "new_source": comparison.new_source,
        "regression_factor": settings.regression_factor,
        "timing_floor_seconds": settings.timing_floor,
        "ok": comparison.ok,
        "verdict": comparison.verdict(),
        "kubernetes_version": _version_to_dict(comparison.kubernetes),
        "regressions": [
            {"check": item.check, "kind": item.kind, "message": item.message} for item in comparison.regressions
        ],
        "checks": [
            {
                "check": check.check,
                "old": check.old.outcome.value if check.old is not None else None,
                "new": check.new.outcome.value if check.new is not None else None,
                "timings": [
                    {
                        "step": timing.name,
                        "old_seconds": round(timing.old, 3),
                        "new_seconds": round(timing.new, 3),
                        "ratio": round(timing.ratio, 3) if timing.ratio is not None else None,
                        "regression": timing.regression,
                    }
                    for timing in check.timings
                ],
                "versions": [_version_to_dict(pair) for pair in check.versions],
                "regressions": [item.kind for item in check.regressions],
            }
            for check in comparison.checks
        ],
    }


def _version_to_dict(pair: VersionPair) -> dict[str, Any]:
    return {
        "name": pair.name,
        "old": pair.old,
        "new": pair.new,
        "changed": pair.changed,
        "missing_on": pair.missing_on,
    }
