"""The limits hold: global, per cluster, and exclusive groups; and checks really overlap."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunCli

SLEEPERS = [f"sleeper-{index}" for index in range(1, 7)]


def _max_overlap(journal: list[dict[str, Any]], key: Any = lambda e: "all") -> dict[str, int]:
    """Greatest number of checks between 'enter' and 'exit' at once, per key."""
    points = sorted(
        ((e["t"], 1 if e["event"] == "enter" else -1, key(e)) for e in journal if e["event"] in ("enter", "exit")),
        key=lambda p: (p[0], p[1]),  # at equal times, exits first
    )
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    for _, delta, group in points:
        running[group] = running.get(group, 0) + delta
        peak[group] = max(peak.get(group, 0), running[group])
    return peak


def test_checks_run_concurrently_up_to_the_global_limit(run_cli: RunCli) -> None:
    result = run_cli("run", *SLEEPERS, "--clusters", "alpha,beta", "--concurrency", "3", "--synthetic-delay", "0.15s")
    assert result.code == 0
    assert len([e for e in result.journal if e["event"] == "exit"]) == 12
    assert _max_overlap(result.journal) == {"all": 3}


def test_per_cluster_limit_holds_on_each_cluster(run_cli: RunCli) -> None:
    result = run_cli(
        "run", *SLEEPERS, "--clusters", "alpha,beta", "--cluster-concurrency", "2", "--synthetic-delay", "0.15s"
    )
    assert result.code == 0
    assert _max_overlap(result.journal, key=lambda e: e["cluster"]) == {"alpha": 2, "beta": 2}
    assert _max_overlap(result.journal) == {"all": 4}


def test_exclusive_checks_never_overlap_on_one_cluster(run_cli: RunCli) -> None:
    result = run_cli("run", "exclusive-a", "exclusive-b", "--clusters", "alpha,beta", "--synthetic-delay", "0.15s")
    assert result.code == 0
    assert _max_overlap(result.journal, key=lambda e: e["cluster"]) == {"alpha": 1, "beta": 1}
    # ...while the two clusters still run at the same time.
    assert _max_overlap(result.journal) == {"all": 2}


def test_the_next_exclusive_check_starts_while_the_previous_one_only_waits_for_its_namespace(
    run_cli: RunCli,
) -> None:
    """The exclusive lock covers a check's steps and its undo actions, not the waits that follow them."""
    result = run_cli("run", "settling-a", "settling-b", "--clusters", "alpha", "--synthetic-delay", "0.3s")
    assert result.code == 0
    events = [(e["check"], e["event"], e.get("what")) for e in sorted(result.journal, key=lambda e: e["t"])]
    first, second = events[0][0], ({"settling-a", "settling-b"} - {events[0][0]}).pop()
    order = [(check, event) for check, event, _ in events]
    # Never two at once in their steps and undo actions...
    assert order.index((first, "cleanup")) < order.index((second, "enter"))
    # ...but the second starts before the first has finished waiting, and every wait still runs.
    assert order.index((second, "enter")) < order.index((first, "settled"))
    assert order.count((first, "settled")) == order.count((second, "settled")) == 1
    # A begin goes out before the undo actions: the wait overlaps them.
    assert order.index((first, "begin")) < order.index((first, "cleanup"))
    assert _max_overlap(result.journal) == {"all": 1}
