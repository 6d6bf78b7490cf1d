"""The message text: what people read in the room."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from kibertas_async.results import CheckResult, Outcome, PluginProblem, RunReport
from kibertas_async_chatwork.message import MAX_MESSAGE_CHARS, format_duration, format_message

README = Path(__file__).parents[1] / "README.md"

MIXED_RUN_MESSAGE = """\
[info][title]kibertas-async NG — 2 clusters × 2 checks (run 20261126-ab12c)[/title]■ prod-a — NG
OK ingress (12.3s) — address: k8s-sample.elb.amazonaws.com
NG cert-manager (45.0s) — step 'wait for leaf certificate': Certificate sample is not Ready: Issuing \
certificate as Secret does not exist
  left behind: namespace cert-manager-test-20261126-x1y2z (timed out)
[hr]■ prod-b — NG
TIMEOUT ingress (15m 00s) — step 'wait for load balancer': check did not finish within 900s (last seen: no \
address yet)
ERROR cert-manager (0.2s) — step 'connect to cluster': ClusterUnreachable: connection refused
[hr]OK 1 · NG 1 · ERROR 1 · TIMEOUT 1 — 15m 12s[/info]"""  # noqa: RUF001


def test_mixed_run_reads_ok_ng_per_cluster_and_check_with_step_and_reason(mixed_report: RunReport) -> None:
    assert format_message(mixed_report) == MIXED_RUN_MESSAGE


def test_readme_sample_is_the_real_output(mixed_report: RunReport) -> None:
    assert MIXED_RUN_MESSAGE in README.read_text(encoding="utf-8")


def test_passing_run_says_ok(passing_report: RunReport) -> None:
    message = format_message(passing_report)

    assert message.startswith("[info][title]kibertas-async OK — 1 cluster × 1 check (run 20261126-ok001)[/title]")  # noqa: RUF001
    assert "\nOK ingress (12.5s)\n" in message
    assert message.endswith("[hr]OK 1 — 12.5s[/info]")


def test_interrupted_run_and_broken_plugin_are_said(passing_report: RunReport) -> None:
    report = dataclasses.replace(
        passing_report,
        interrupted_by="SIGTERM",
        plugin_problems=[PluginProblem("fluent", "ModuleNotFoundError: No module named 'aioboto3'")],
    )

    message = format_message(report)

    assert message.startswith("[info][title]kibertas-async NG")
    assert "Interrupted by SIGTERM: checks still running were stopped and cleaned up." in message
    assert "Plugin fluent failed to load; its checks did not run — ModuleNotFoundError: No module named" in message


def test_skipped_check_is_marked_skip(passing_report: RunReport) -> None:
    skipped = CheckResult("datadog-agent", "prod-a", Outcome.SKIPPED, passing_report.started_at, reason="no DD_API_KEY")
    report = dataclasses.replace(
        passing_report, checks=["ingress", "datadog-agent"], results=[*passing_report.results, skipped]
    )

    message = format_message(report)

    assert "\nSKIP datadog-agent (0.0s) — no DD_API_KEY\n" in message
    assert "kibertas-async OK" in message


def test_text_from_checks_cannot_close_the_box_or_mention_people(passing_report: RunReport) -> None:
    failed = CheckResult(
        "ingress",
        "prod-a",
        Outcome.FAILED,
        passing_report.started_at,
        step="probe",
        reason="got [/info][toall][To:1234] [code]x[/code] and a list ['a', 'b']",
    )
    message = format_message(dataclasses.replace(passing_report, results=[failed]))

    assert message.count("[/info]") == 1
    assert message.endswith("[/info]")
    for tag in ("[toall]", "[To:1234]", "[code]", "[/code]"):
        assert tag not in message
    assert "['a', 'b']" in message


def test_long_reasons_are_shortened_never_the_check_lines(mixed_report: RunReport) -> None:
    long_reason = "x" * 50_000
    report = dataclasses.replace(
        mixed_report,
        results=[
            dataclasses.replace(result, reason=long_reason) if result.reason else result
            for result in mixed_report.results
        ],
    )

    message = format_message(report)

    assert len(message) <= MAX_MESSAGE_CHARS
    for line in ("OK ingress (12.3s)", "NG cert-manager (45.0s)", "TIMEOUT ingress (15m 00s)", "ERROR cert-manager"):
        assert line in message
    assert "…" in message


def test_a_small_limit_drops_details_and_keeps_every_check_line(mixed_report: RunReport) -> None:
    message = format_message(mixed_report, max_chars=520)

    assert len(message) <= 520
    assert "NG cert-manager (45.0s) — step 'wait for leaf certificate'\n" in message
    assert "TIMEOUT ingress (15m 00s) — step 'wait for load balancer'\n" in message
    assert "ERROR cert-manager (0.2s) — step 'connect to cluster'\n" in message
    assert "  left behind: 1 object\n" in message


def test_hundreds_of_passes_are_counted_so_the_failures_still_show(mixed_report: RunReport) -> None:
    many = [
        CheckResult(f"check-{number:03d}", "prod-a", Outcome.PASSED, mixed_report.started_at, duration=1.0)
        for number in range(400)
    ]
    report = dataclasses.replace(mixed_report, results=[*many, *mixed_report.results])

    message = format_message(report, max_chars=2_000)

    assert len(message) <= 2_000
    assert "■ prod-a — NG\nOK 401 checks\nNG cert-manager (45.0s)" in message
    assert "TIMEOUT ingress (15m 00s)" in message


def test_the_message_always_closes_its_box(mixed_report: RunReport) -> None:
    message = format_message(mixed_report, max_chars=150)

    assert re.fullmatch(r"\[info\]\[title\][^\[]*\[/title\].*\[/info\]", message, flags=re.DOTALL)
    assert "cut to fit" in message


def test_durations_are_short() -> None:
    assert [format_duration(seconds) for seconds in (0.04, 12.34, 59.9, 65, 3599, 3725)] == [
        "0.0s",
        "12.3s",
        "59.9s",
        "1m 05s",
        "59m 59s",
        "1h 02m",
    ]
