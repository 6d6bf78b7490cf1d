"""One raising hook never sinks the run: every hook is called plugin by plugin, a failure is a plugin
problem naming the plugin and the hook (exit 1), the other checks run to their real outcome, and every
report is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, RunCli

OBSERVED_HOOKS = ("run_started", "check_finished", "run_finished", "register_reporters", "register_notifiers")


@pytest.mark.parametrize("hook", [*OBSERVED_HOOKS, "reporter"])
def test_a_raising_hook_is_a_plugin_problem_and_the_run_goes_on(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: str
) -> None:
    observed = tmp_path / "observer.jsonl"
    monkeypatch.setenv("OBSERVER_LOG", str(observed))
    monkeypatch.setenv("RAISING_HOOKS", hook)
    monkeypatch.syspath_prepend(str(FIXTURES / "plugins"))
    report_path, junit_path = tmp_path / "report.json", tmp_path / "junit.xml"
    result = run_cli(
        "run",
        "sleeper-1",
        "failing",
        "--clusters",
        "alpha,beta",
        "--plugin",
        "raising_hooks",
        "--plugin",
        "observer_plugin",
        "--report-json",
        str(report_path),
        "--junit-xml",
        str(junit_path),
    )
    assert result.code == 1
    report = json.loads(report_path.read_text())
    outcomes = sorted((r["cluster"], r["check"], r["outcome"]) for r in report["results"])
    assert outcomes == [
        ("alpha", "failing", "failed"),
        ("alpha", "sleeper-1", "passed"),
        ("beta", "failing", "failed"),
        ("beta", "sleeper-1", "passed"),
    ], "no check may be cancelled (or called a timeout) because a hook raised"
    assert all("timeout" not in r["reason"] for r in report["results"])
    expected_hook = "reporter 'broken-reporter' write" if hook == "reporter" else f"kibertas_async_{hook}"
    problems = [p for p in report["plugin_problems"] if p["plugin"] == "raising_hooks"]
    if hook != "reporter":  # a reporter's own failure is known only after the JSON report was written
        assert problems == [
            {"plugin": "raising_hooks", "hook": expected_hook, "error": f"ValueError: {hook} is broken on purpose"}
        ]
    assert junit_path.exists()
    failed = [e for e in result.events() if e["event"] == "plugin.failed"]
    assert [(e["plugin"], e["hook"]) for e in failed] == [("raising_hooks", expected_hook)]
    assert f"plugin raising_hooks: {expected_hook} raised ValueError" in result.out or hook == "reporter"
    # The other plugin still saw every hook, its reporter and notifier included.
    seen = [json.loads(line)["hook"] for line in observed.read_text().splitlines()]
    assert seen.count("check_finished") == 4
    assert {"run_started", "run_finished", "reporter", "notifier"} <= set(seen)
    assert "Traceback" not in result.err


@pytest.mark.parametrize("hook", ["register_checks", "register_options"])
def test_a_raising_register_hook_is_one_line_from_list_and_run(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hook: str
) -> None:
    monkeypatch.setenv("RAISING_HOOKS", hook)
    monkeypatch.syspath_prepend(str(FIXTURES / "plugins"))
    listing = run_cli("list", "--plugin", "raising_hooks")
    assert listing.code == 1
    assert "sleeper-1" in listing.out, "the other plugins' checks are still listed"
    assert listing.err.strip() == (
        f"plugin raising_hooks: kibertas_async_{hook} raised ValueError: {hook} is broken on purpose"
    )
    report_path = tmp_path / "report.json"
    run = run_cli("run", "sleeper-1", "--plugin", "raising_hooks", "--report-json", str(report_path))
    assert run.code == 1
    report = json.loads(report_path.read_text())
    assert report["results"][0]["outcome"] == "passed"
    assert report["plugin_problems"][0]["hook"] == f"kibertas_async_{hook}"
    assert "Traceback" not in run.err
