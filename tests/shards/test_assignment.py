"""The shard assignment: every cell once, deterministic whatever the order given, balanced, exclusive
groups of one cluster in one shard, and bad shard values refused with what is wrong."""

from __future__ import annotations

import itertools
import random

import pytest

from kibertas_async import Check
from kibertas_async.errors import UsageError
from kibertas_async.shards import Shard, assign_shards, parse_shard, requested_shard, shard_from_environment


def make_check(name: str, exclusive: str | None = None) -> type[Check]:
    return type(name.replace("-", "_"), (Check,), {"name": name, "description": name, "exclusive": exclusive})


PLAIN = [make_check(f"check-{index}") for index in range(1, 6)]
NODES = [make_check("cluster-autoscaler", "node-count"), make_check("karpenter", "node-count")]
CLUSTERS = [f"cluster-{index:02d}" for index in range(1, 8)]


def cells_of(clusters: list[str], checks: list[type[Check]]) -> set[tuple[str, str]]:
    return {(cluster, check.name) for cluster in clusters for check in checks}


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 10, 100])
def test_every_cell_is_in_exactly_one_shard(count: int) -> None:
    checks = PLAIN + NODES
    shards = assign_shards(CLUSTERS, checks, count)
    assert len(shards) == count
    flat = [cell for shard in shards for cell in shard]
    assert len(flat) == len(set(flat))
    assert set(flat) == cells_of(CLUSTERS, checks)


def test_the_order_clusters_and_checks_are_given_in_does_not_matter() -> None:
    checks = PLAIN + NODES
    expected = assign_shards(CLUSTERS, checks, 3)
    shuffler = random.Random(12)
    for _ in range(20):
        clusters, shuffled = list(CLUSTERS), list(checks)
        shuffler.shuffle(clusters)
        shuffler.shuffle(shuffled)
        assert assign_shards(clusters, shuffled, 3) == expected


@pytest.mark.parametrize(("clusters", "count"), [(6, 3), (7, 3), (1, 4), (13, 5), (2, 7)])
def test_without_exclusive_groups_shard_sizes_differ_by_at_most_one(clusters: int, count: int) -> None:
    names = [f"cluster-{index:02d}" for index in range(clusters)]
    sizes = [len(shard) for shard in assign_shards(names, PLAIN, count)]
    assert max(sizes) - min(sizes) <= 1, sizes
    assert sum(sizes) == clusters * len(PLAIN)


@pytest.mark.parametrize("count", [2, 3, 4, 5, 6])
def test_exclusive_groups_stay_whole_and_sizes_differ_by_at_most_the_largest_group(count: int) -> None:
    checks = PLAIN + NODES
    shards = assign_shards(CLUSTERS, checks, count)
    for cluster in CLUSTERS:
        holding = {index for index, shard in enumerate(shards) for cell in shard if cell in cells_of([cluster], NODES)}
        assert len(holding) == 1, f"{cluster}'s node-count group is split over shards {holding}"
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= len(NODES), sizes


def test_two_exclusive_groups_on_one_cluster_are_units_of_their_own() -> None:
    checks = [make_check("a", "one"), make_check("b", "one"), make_check("c", "two"), make_check("d", "two")]
    shards = assign_shards(["only"], checks, 2)
    assert [sorted(check for _, check in shard) for shard in shards] == [["a", "b"], ["c", "d"]]


def test_a_shard_touches_about_its_share_of_the_clusters() -> None:
    """Contiguous runs, not round robin: with 6 clusters on 3 shards each shard connects to 2 clusters."""
    shards = assign_shards(CLUSTERS[:6], PLAIN, 3)
    assert [sorted({cluster for cluster, _ in shard}) for shard in shards] == [
        ["cluster-01", "cluster-02"],
        ["cluster-03", "cluster-04"],
        ["cluster-05", "cluster-06"],
    ]


def test_more_shards_than_cells_leaves_some_empty() -> None:
    shards = assign_shards(["one"], PLAIN[:2], 5)
    assert sorted(len(shard) for shard in shards) == [0, 0, 0, 1, 1]


def test_the_assignment_is_the_same_in_every_process() -> None:
    """No hash of a str (randomised per process) nor any float decides it: a fixed expected answer."""
    shards = assign_shards(["b", "a"], [*PLAIN[:2], *NODES], 3)
    assert shards == (
        (("a", "check-1"), ("a", "check-2")),
        (("a", "cluster-autoscaler"), ("a", "karpenter"), ("b", "check-1")),
        (("b", "check-2"), ("b", "cluster-autoscaler"), ("b", "karpenter")),
    )


@pytest.mark.parametrize(("text", "shard"), [("1/1", Shard(1, 1)), ("2/3", Shard(2, 3)), (" 3 / 3 ", Shard(3, 3))])
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/2", "numbered 1 to 2"),
        ("0/3", "numbered 1 to 3"),
        ("0/0", "N must be at least 1"),
        ("a/b", "is not I/N"),
        ("2", "is not I/N"),
        ("", "is not I/N"),
        ("-1/2", "is not I/N"),
        ("1/2/3", "is not I/N"),
    ],
)
def test_bad_shards_are_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_shard(text)


def test_the_indexed_job_environment_selects_the_shard() -> None:
    assert shard_from_environment({}) is None
    assert shard_from_environment({"JOB_COMPLETION_INDEX": "0", "KIBERTAS_ASYNC_SHARDS": "3"}) == Shard(1, 3)
    assert shard_from_environment({"JOB_COMPLETION_INDEX": "2", "KIBERTAS_ASYNC_SHARDS": "3"}) == Shard(3, 3)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"JOB_COMPLETION_INDEX": "1"}, "KIBERTAS_ASYNC_SHARDS is not"),
        ({"KIBERTAS_ASYNC_SHARDS": "3"}, "JOB_COMPLETION_INDEX is not"),
        ({"JOB_COMPLETION_INDEX": "3", "KIBERTAS_ASYNC_SHARDS": "3"}, "out of range"),
        ({"JOB_COMPLETION_INDEX": "x", "KIBERTAS_ASYNC_SHARDS": "3"}, "not a whole number"),
        ({"JOB_COMPLETION_INDEX": "0", "KIBERTAS_ASYNC_SHARDS": "0"}, "at least 1"),
        ({"JOB_COMPLETION_INDEX": "0", "KIBERTAS_ASYNC_SHARDS": ""}, "at least 1"),
    ],
)
def test_a_broken_indexed_job_environment_is_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        shard_from_environment(environ)


def test_the_flag_wins_over_the_environment_but_a_broken_environment_is_still_refused() -> None:
    assert requested_shard("1/2", {"JOB_COMPLETION_INDEX": "2", "KIBERTAS_ASYNC_SHARDS": "3"}) == Shard(1, 2)
    with pytest.raises(UsageError):
        requested_shard("1/2", {"JOB_COMPLETION_INDEX": "2"})


def test_balance_over_many_shapes() -> None:
    """Every shape of up to 9 clusters, 0-2 exclusive pairs and 1-6 shards: within the largest unit."""
    for clusters, pairs, count in itertools.product(range(1, 10), range(3), range(1, 7)):
        checks = PLAIN[:3] + [make_check(f"x{p}-{i}", f"group-{p}") for p in range(pairs) for i in range(2)]
        sizes = [len(shard) for shard in assign_shards([f"c{i}" for i in range(clusters)], checks, count)]
        largest = 2 if pairs else 1
        assert max(sizes) - min(sizes) <= largest, (clusters, pairs, count, sizes)
