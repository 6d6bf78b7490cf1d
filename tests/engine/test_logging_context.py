"""The run, cluster, check and step reach every event, whoever logs it (issue 10: structlog contextvars)."""

from __future__ import annotations

from tests.conftest import RunCli

PLUGIN = "tests.engine.context_logging_plugin"


def test_a_plugins_own_loggers_and_its_libraries_carry_the_run_cluster_check_and_step(run_cli: RunCli) -> None:
    result = run_cli("run", "logs-on-its-own", "sleeper-1", "--plugin", PLUGIN, "--clusters", "alpha,beta")
    assert result.code == 0, result.err
    events = result.events()
    run_id = events[0]["run_id"]
    for cluster in ("alpha", "beta"):
        mine = {event["event"]: event for event in events if event.get("cluster") == cluster}
        expected = {"run_id": run_id, "cluster": cluster, "check": "logs-on-its-own", "step": "talk"}
        for name in ("plugin.own_logger", "a library's stdlib record", "plugin.child_task"):
            assert {key: mine[name].get(key) for key in expected} == expected, mine[name]
        after = mine["plugin.after_the_step"]
        assert after["check"] == "logs-on-its-own" and "step" not in after  # the step is over
    # The other check's events never carry this one's step or name.
    sleeper = [event for event in events if event.get("check") == "sleeper-1"]
    assert sleeper and all(event.get("step") in (None, "sleep") for event in sleeper)
    # Events outside any check (the run's own) name no check.
    finished = next(event for event in events if event["event"] == "run.finished")
    assert "check" not in finished and "cluster" not in finished
