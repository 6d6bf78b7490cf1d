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
