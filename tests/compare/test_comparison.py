"""The comparison's rules: what is a regression (outcome, timing beyond the factor, missing add-on) and
what is only shown (a changed version, a slower step under the floor)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kibertas_async.compare import ComparisonSettings, Side, SideResult, compare, compare_run
from kibertas_async.results import CheckResult, Outcome, RunReport, StepResult

SETTINGS = ComparisonSettings("old", "new", regression_factor=2.0, timing_floor=1.0)


def result(
    outcome: Outcome = Outcome.PASSED,
    steps: dict[str, float] | None = None,
    facts: dict[str, str] | None = None,
    step: str | None = None,
    reason: str = "",
) -> SideResult:
    return SideResult(
        outcome=outcome,
        step=step,
        reason=reason,
        steps=tuple((name, Outcome.PASSED, seconds) for name, seconds in (steps or {}).items()),
        facts=facts or {},
    )


def side(cluster: str, kubernetes: str | None = None, **results: SideResult) -> Side:
    return Side(cluster, {name.replace("_", "-"): value for name, value in results.items()}, kubernetes)


def test_ng_on_new_where_old_is_ok_is_a_regression_naming_step_and_reason() -> None:
    comparison = compare(
        side("old", ingress=result()),
        side("new", ingress=result(Outcome.FAILED, step="resolve host", reason="NXDOMAIN")),
        SETTINGS,
    )
    [regression] = comparison.regressions
    assert regression.kind == "outcome"
    assert regression.message == "ingress: NG on new (resolve host: NXDOMAIN), OK on old"
    assert not comparison.ok
    assert comparison.verdict() == "NG: new has 1 regression against old"


@pytest.mark.parametrize(
    ("old", "new"),
    [(Outcome.FAILED, Outcome.FAILED), (Outcome.FAILED, Outcome.PASSED), (Outcome.SKIPPED, Outcome.SKIPPED)],
)
def test_no_regression_when_old_was_not_ok_or_both_skip(old: Outcome, new: Outcome) -> None:
    comparison = compare(side("old", c=result(old)), side("new", c=result(new)), SETTINGS)
    assert comparison.regressions == []
    assert comparison.verdict() == "OK: new has no regression against old"


def test_skipped_or_timed_out_on_new_where_old_passed_is_a_regression() -> None:
    comparison = compare(
        side("old", karpenter=result(), fluent=result()),
        side("new", karpenter=result(Outcome.SKIPPED, reason="no Karpenter"), fluent=result(Outcome.TIMEOUT)),
        SETTINGS,
    )
    assert [(r.check, r.kind) for r in comparison.regressions] == [("karpenter", "outcome"), ("fluent", "outcome")]
    assert "SKIP on new (no Karpenter)" in comparison.regressions[0].message


def test_a_step_more_than_the_factor_slower_is_a_regression_with_its_ratio() -> None:
    comparison = compare(
        side("old", cert_manager=result(steps={"issue leaf certificate": 2.0, "verify leaf certificate": 1.5})),
        side("new", cert_manager=result(steps={"issue leaf certificate": 5.0, "verify leaf certificate": 2.9})),
        SETTINGS,
    )
    [check] = comparison.checks
    leaf, verify = check.timings
    assert (leaf.name, leaf.old, leaf.new, leaf.ratio, leaf.regression) == (
        "issue leaf certificate",
        2.0,
        5.0,
        2.5,
        True,
    )
    assert verify.regression is False  # 1.93x: under the factor
    [regression] = comparison.regressions
    assert regression.kind == "timing"
    assert regression.message == "cert-manager: step 'issue leaf certificate' took 5.0s on new, 2.5x the 2.0s on old"


def test_durations_under_the_floor_count_as_the_floor() -> None:
    # 0.1s -> 0.9s is 9x, but both are under the 1s floor: noise, not a regression. 0.2s -> 2.5s is one.
    comparison = compare(
        side("old", c=result(steps={"create": 0.1, "wait": 0.2})),
        side("new", c=result(steps={"create": 0.9, "wait": 2.5})),
        SETTINGS,
    )
    create, wait = comparison.checks[0].timings
    assert create.regression is False and create.ratio == pytest.approx(9.0)
    assert wait.regression is True
    assert not create.key(SETTINGS.timing_floor) and wait.key(SETTINGS.timing_floor)


def test_the_factor_is_the_users() -> None:
    old, new = side("old", c=result(steps={"wait": 10.0})), side("new", c=result(steps={"wait": 25.0}))
    assert not compare(old, new, ComparisonSettings("old", "new", regression_factor=3.0)).regressions
    assert compare(old, new, ComparisonSettings("old", "new", regression_factor=2.0)).regressions


def test_steps_that_did_not_pass_on_both_sides_are_not_timed() -> None:
    failed = SideResult(Outcome.FAILED, steps=(("wait", Outcome.FAILED, 30.0),))
    comparison = compare(side("old", c=result(steps={"wait": 1.0})), side("new", c=failed), SETTINGS)
    assert comparison.checks[0].timings == ()
    assert [r.kind for r in comparison.regressions] == ["outcome"]


def test_an_addon_missing_on_one_side_is_a_regression_either_way() -> None:
    found = {"external-dns version": "v0.21.0"}
    missing = {"external-dns version": "not found (no Deployment or DaemonSet external-dns in namespace kube-system)"}
    on_new = compare(side("old", ingress=result(facts=found)), side("new", ingress=result(facts=missing)), SETTINGS)
    [regression] = on_new.regressions
    assert (regression.kind, regression.message) == (
        "missing",
        "ingress: external-dns not found on new (v0.21.0 on old)",
    )
    on_old = compare(side("old", ingress=result(facts=missing)), side("new", ingress=result(facts=found)), SETTINGS)
    assert [r.message for r in on_old.regressions] == ["ingress: external-dns not found on old (v0.21.0 on new)"]


def test_missing_on_both_sides_or_unknown_is_shown_not_flagged() -> None:
    missing = {"external-dns version": "not found (...)", "ingress controller version": "unknown (403)"}
    found = {"external-dns version": "not found (...)", "ingress controller version": "v2.8.0"}
    comparison = compare(side("old", ingress=result(facts=missing)), side("new", ingress=result(facts=found)), SETTINGS)
    assert comparison.regressions == []
    assert [pair.name for pair in comparison.checks[0].versions] == ["external-dns", "ingress controller"]


def test_a_changed_version_is_shown_and_is_not_a_regression() -> None:
    comparison = compare(
        side("old", "v1.30.4", cert_manager=result(facts={"cert-manager version": "v1.14.2", "leaf": "x"})),
        side("new", "v1.31.0", cert_manager=result(facts={"cert-manager version": "v1.15.0", "leaf": "y"})),
        SETTINGS,
    )
    assert comparison.ok
    [(check, pair)] = [change for change in comparison.version_changes if change[0]]
    assert (check, pair.name, pair.old, pair.new, pair.changed) == (
        "cert-manager",
        "cert-manager",
        "v1.14.2",
        "v1.15.0",
        True,
    )
    assert comparison.kubernetes.changed and (comparison.kubernetes.old, comparison.kubernetes.new) == (
        "v1.30.4",
        "v1.31.0",
    )
    assert [pair.name for pair in comparison.checks[0].versions] == ["cert-manager"]  # other facts are not versions


def test_a_check_run_on_one_side_only_is_listed_without_a_regression() -> None:
    comparison = compare(side("old", a=result(), b=result()), side("new", b=result(), c=result()), SETTINGS)
    assert [(c.check, c.old is not None, c.new is not None) for c in comparison.checks] == [
        ("a", True, False),
        ("b", True, True),
        ("c", False, True),
    ]
    assert comparison.ok


def test_a_run_compares_two_of_its_clusters_and_its_ok_includes_the_comparison() -> None:
    now = datetime.now(UTC)

    def check_result(cluster: str, seconds: float) -> CheckResult:
        step = StepResult("wait", now, duration=seconds)
        return CheckResult("c", cluster, Outcome.PASSED, now, steps=[step], facts={"x version": "1"})

    report = RunReport("r", now, ["old", "new"], ["c"], results=[check_result("old", 2.0), check_result("new", 9.0)])
    report.kubernetes_versions = {"old": "v1.35.0", "new": "v1.36.3"}
    assert report.ok
    report.comparison = compare_run(report, SETTINGS)
    assert [r.kind for r in report.comparison.regressions] == ["timing"]
    assert report.comparison.kubernetes.changed
    assert not report.ok
