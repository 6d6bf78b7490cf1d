"""Diagnostics without a cluster: bounds, fair selection, redaction, the time box and its shield, a
broken source, how objects and pods are described, the JSON report and the Chatwork message."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from kibertas_async.diagnostics import (
    MAX_DIAGNOSTICS,
    MAX_LINE_CHARS,
    MAX_LINES,
    DiagnosticsContext,
    bounded,
    collect_diagnostics,
    select,
)
from kibertas_async.diagnostics.kubernetes import describe_object, describe_pod, pod_problems, workload_status
from kibertas_async.events import REDACTED, SecretRedactor
from kibertas_async.options import OptionValues
from kibertas_async.outputs.json_report import report_from_dict, report_to_dict
from kibertas_async.results import CheckResult, Diagnostic, Outcome, PluginProblem, RunReport
from kibertas_async_chatwork.message import format_message

SECRET = "s3cr3t-planted-value-0042"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _result(outcome: Outcome = Outcome.FAILED) -> CheckResult:
    return CheckResult(
        check="ingress",
        cluster="prod-a",
        outcome=outcome,
        started_at=datetime(2026, 12, 1, tzinfo=UTC),
        step="wait for load balancer",
        reason="no address",
    )


def _context(seconds: float) -> DiagnosticsContext:
    return DiagnosticsContext(
        result=_result(), kube=None, options=OptionValues({}, {}), deadline=anyio.current_time() + seconds
    )


def test_bounded_splits_cuts_and_redacts() -> None:
    redactor = SecretRedactor([SECRET])
    lines = [f"line {n} token={SECRET}" for n in range(30)] + ["two\nlines", "x" * 500]
    diagnostic = bounded(Diagnostic(f"pod ns/{SECRET}", "a\ntitle " + "y" * 300, lines), redactor)
    assert len(diagnostic.lines) == MAX_LINES
    assert diagnostic.lines[-1] == f"… {len(lines) + 1 - MAX_LINES + 1} more lines"
    assert all(len(line) <= MAX_LINE_CHARS for line in [diagnostic.title, diagnostic.source, *diagnostic.lines])
    assert "\n" not in diagnostic.title and diagnostic.title.endswith("…")
    text = repr(diagnostic)
    assert SECRET not in text
    assert diagnostic.source == f"pod ns/{REDACTED}"
    assert diagnostic.lines[0] == f"line 0 token={REDACTED}"


def test_select_takes_each_sources_first_then_each_ones_second_up_to_the_limit() -> None:
    first = [Diagnostic("a", str(n)) for n in range(10)]
    second = [Diagnostic("b", "0")]
    chosen = select([first, second])
    assert len(chosen) == MAX_DIAGNOSTICS
    assert [(d.source, d.title) for d in chosen[:3]] == [("a", "0"), ("b", "0"), ("a", "1")]


class _Slow:
    name = "slow"

    async def collect(self, context: DiagnosticsContext) -> list[Diagnostic]:
        await anyio.sleep_forever()
        return []


class _Raising:
    name = "raising"

    async def collect(self, context: DiagnosticsContext) -> list[Diagnostic]:
        raise RuntimeError(f"broken with {SECRET}")


class _Quick:
    name = "quick"

    async def collect(self, context: DiagnosticsContext) -> list[Diagnostic]:
        return [Diagnostic("quick", f"found {SECRET}", ["detail"])]


@pytest.mark.anyio
async def test_a_slow_source_is_left_out_a_raising_one_is_a_problem_the_others_count() -> None:
    problems: list[PluginProblem] = []
    found = await collect_diagnostics(
        [("slow-plugin", _Slow()), ("raising-plugin", _Raising()), ("quick-plugin", _Quick())],
        _context(0.5),
        redactor=SecretRedactor([SECRET]),
        on_problem=problems.append,
    )
    assert found == [Diagnostic("quick", f"found {REDACTED}", ["detail"])]
    assert [(p.plugin, p.hook) for p in problems] == [("raising-plugin", "diagnostics 'raising' collect")]
    assert problems[0].error.startswith("RuntimeError: broken with")


@pytest.mark.anyio
async def test_collection_is_shielded_from_the_cancellation_of_its_caller() -> None:
    found: list[Diagnostic] = []
    with anyio.CancelScope() as outer:
        outer.cancel()  # as when the run's deadline cancelled the check: it is still explained
        found = await collect_diagnostics([("quick-plugin", _Quick())], _context(1.0))
    assert [d.source for d in found] == ["quick"]


def test_a_secret_is_shown_by_its_keys_only_and_a_spec_never() -> None:
    secret = {"kind": "Secret", "metadata": {"resourceVersion": "7"}, "type": "Opaque", "data": {"tls.crt": "QUJD"}}
    assert describe_object(secret) == ["resourceVersion 7, generation -", "data keys: tls.crt"]
    deployment = {
        "kind": "Deployment",
        "metadata": {"resourceVersion": "9", "generation": 2},
        "spec": {"template": {"spec": {"containers": [{"env": [{"name": "TOKEN", "value": SECRET}]}]}}},
        "status": {
            "readyReplicas": 0,
            "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}],
        },
    }
    lines = describe_object(deployment)
    assert "Available=False (MinimumReplicasUnavailable)" in lines
    assert "status.readyReplicas: 0" in lines
    assert SECRET not in repr(lines)


def test_a_crashing_pod_says_why_first() -> None:
    pod = {
        "metadata": {"name": "web-1", "namespace": "ns"},
        "spec": {"nodeName": "node-a"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            "containerStatuses": [
                {
                    "name": "web",
                    "ready": False,
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                    "lastState": {"terminated": {"reason": "Error", "exitCode": 1}},
                }
            ],
        },
    }
    assert pod_problems(pod)[0] == "container web waiting: CrashLoopBackOff: back-off 40s"
    diagnostic = describe_pod(pod)
    assert diagnostic.source == "pod ns/web-1"
    assert diagnostic.title == "Running: container web waiting: CrashLoopBackOff: back-off 40s"
    assert "container web restarted 4 time(s), last Error exit 1" in diagnostic.lines


def test_a_daemonset_that_wants_no_pod_names_its_node_selector() -> None:
    daemonset = {
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "datadog"},
        "spec": {"template": {"spec": {"nodeSelector": {"pool": "none"}}}},
        "status": {"desiredNumberScheduled": 0, "numberReady": 0},
    }
    healthy, title, _lines = workload_status(daemonset)
    assert not healthy
    assert title == (
        "DaemonSet datadog/agent: 0/0 pods ready (scheduled on 0 nodes); "
        'it wants no pod: nodeSelector {"pool": "none"} matches no node'
    )


def _report(diagnostics: list[Diagnostic]) -> RunReport:
    result = _result()
    result.diagnostics = diagnostics
    return RunReport(
        run_id="r1",
        started_at=datetime(2026, 12, 1, tzinfo=UTC),
        clusters=["prod-a"],
        checks=["ingress"],
        results=[result],
    )


def test_the_json_report_carries_them_and_reads_them_back() -> None:
    diagnostics = [Diagnostic("events ns", "1 warning(s)", ["a", "b"]), Diagnostic("log ns/p", "no logs: none")]
    data = report_to_dict(_report(diagnostics))
    assert data["results"][0]["diagnostics"] == [
        {"source": "events ns", "title": "1 warning(s)", "lines": ["a", "b"]},
        {"source": "log ns/p", "title": "no logs: none", "lines": []},
    ]
    assert report_from_dict(data).results[0].diagnostics == diagnostics
    del data["results"][0]["diagnostics"]  # a report written before the field existed
    assert report_from_dict(data).results[0].diagnostics == []


def test_the_chatwork_message_shows_the_two_most_telling_and_drops_them_first() -> None:
    diagnostics = [
        Diagnostic("waited on Ingress ns/sample", "Ingress ns/sample: no address [toall]"),
        Diagnostic("workload kube-system/lb", "Deployment kube-system/lb: 0/1 replicas ready"),
        Diagnostic("events ns", "2 event(s), no warning"),
    ]
    message = format_message(_report(diagnostics))
    why = [line for line in message.splitlines() if line.startswith("  why: ")]
    assert why == [
        "  why: waited on Ingress ns/sample: Ingress ns/sample: no address \N{FULLWIDTH LEFT SQUARE BRACKET}toall]",
        "  why: workload kube-system/lb: Deployment kube-system/lb: 0/1 replicas ready",
    ]
    short = format_message(_report(diagnostics), max_chars=len(message) - 60)
    assert "NG ingress" in short and "why:" not in short
