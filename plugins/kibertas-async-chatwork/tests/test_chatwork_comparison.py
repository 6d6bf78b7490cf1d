"""A blue/green run's message: the verdict in the title, then every regression, then the rest."""

from __future__ import annotations

from datetime import UTC, datetime

from kibertas_async.compare import ComparisonSettings, compare_run
from kibertas_async.results import CheckResult, Outcome, RunReport, StepResult
from kibertas_async_chatwork.message import format_message

STARTED = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)


def _result(cluster: str, check: str, outcome: Outcome, seconds: float, version: str, **more: str) -> CheckResult:
    return CheckResult(
        check,
        cluster,
        outcome,
        STARTED,
        duration=seconds + 1,
        step=None if outcome is Outcome.PASSED else "resolve host",
        reason="" if outcome is Outcome.PASSED else "NXDOMAIN",
        steps=[StepResult("wait for load balancer", STARTED, duration=seconds)],
        facts={f"{check} version": version, **more},
    )


def _blue_green_report() -> RunReport:
    report = RunReport(
        "r1",
        STARTED,
        ["old", "new"],
        ["ingress", "cert-manager"],
        results=[
            _result("old", "ingress", Outcome.PASSED, 2.0, "v2.7.0"),
            _result("old", "cert-manager", Outcome.PASSED, 3.0, "v1.14.2"),
            _result("new", "ingress", Outcome.FAILED, 2.2, "v2.7.0"),
            _result("new", "cert-manager", Outcome.PASSED, 3.3, "v1.15.0"),
        ],
        duration=20.0,
        kubernetes_versions={"old": "v1.30.4", "new": "v1.31.0"},
    )
    report.comparison = compare_run(report, ComparisonSettings("old", "new"))
    return report


def test_verdict_first_then_regressions_then_the_rest() -> None:
    message = format_message(_blue_green_report())
    title, body = message.removeprefix("[info][title]").split("[/title]", 1)
    assert title == "kibertas-async NG — blue/green old → new: 1 regression (run r1)"
    comparison_block, *cluster_blocks = body.split("\n[hr]")
    assert comparison_block.splitlines() == [
        "■ old → new — NG",
        "REGRESSION ingress — ingress: NG on new (resolve host: NXDOMAIN), OK on old",
        "versions — kubernetes v1.30.4 → v1.31.0, cert-manager v1.14.2 → v1.15.0",
        "ingress OK → NG — wait for load balancer 2.0s → 2.2s (1.1x)",
        "cert-manager OK → OK — wait for load balancer 3.0s → 3.3s (1.1x)",
    ]
    assert cluster_blocks[0].startswith("■ old — OK") and cluster_blocks[1].startswith("■ new — NG")


def test_when_space_runs_out_the_regressions_stay_and_the_details_go() -> None:
    message = format_message(_blue_green_report(), max_chars=500)
    assert len(message) <= 500
    assert "REGRESSION ingress" in message
    assert "versions — " not in message  # a detail, dropped first


def test_no_regression_says_so_in_the_title() -> None:
    report = _blue_green_report()
    report.results[2] = _result("new", "ingress", Outcome.PASSED, 2.2, "v2.7.0")
    report.comparison = compare_run(report, ComparisonSettings("old", "new"))
    assert format_message(report).startswith(
        "[info][title]kibertas-async OK — blue/green old → new: no regression (run r1)[/title]■ old → new — OK\n"
    )
