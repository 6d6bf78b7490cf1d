"""What counts as set for ``Option.requires``: an off switch needs nothing, an on switch needs its partner."""

from __future__ import annotations

import pytest

from kibertas_async.options import Option, parse_bool

SWITCH = Option[bool]("feature", "A switch.", default=False, parse=parse_bool, requires=("feature-key",))


@pytest.mark.parametrize(
    ("value", "is_set"),
    [(False, False), (None, False), ("", False), ("  ", False), ((), False), (True, True), ("x", True), (0, True)],
)
def test_is_set(value: object, is_set: bool) -> None:
    assert SWITCH.is_set(value) is is_set
