"""The kit's eventually(): the value that satisfied the wait, or an assertion naming what it last saw."""

from __future__ import annotations

import itertools

import pytest

from kibertas_async.testing.waiting import eventually


def test_returns_the_first_value_that_satisfies_the_condition() -> None:
    counter = itertools.count()
    assert eventually("the third look", lambda: next(counter), lambda value: value >= 2, every=0) == 2


def test_by_default_waits_for_a_truthy_value() -> None:
    looks = iter([None, [], ["pod"]])
    assert eventually("a pod", lambda: next(looks), every=0) == ["pod"]


def test_gives_up_naming_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"^the pod bound: not after 0.05s; last seen 'Pending'$"):
        eventually("the pod bound", lambda: "Pending", lambda phase: phase == "Running", timeout=0.05, every=0.01)
