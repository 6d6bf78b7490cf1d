"""Durations are printed as durations (``60s``, ``5m``), in a form :func:`parse_duration` reads back."""

from __future__ import annotations

import pytest

from kibertas_async import Option, format_duration, optional, parse_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "0.2s"),
        (1.0, "1s"),
        (3.5, "3.5s"),
        (15.0, "15s"),
        (60.0, "1m"),
        (90.0, "90s"),
        (150.0, "150s"),
        (300.0, "5m"),
        (600.0, "10m"),
        (3600.0, "1h"),
        (5400.0, "90m"),
        (7200.0, "2h"),
        (float("inf"), "unlimited"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.2, 1.0, 2.5, 59.0, 60.0, 61.0, 150.0, 300.0, 3599.0, 3600.0, 5400.0, 86400.0])
def test_what_is_printed_reads_back_as_the_same_duration(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_duration_options_show_durations_and_others_show_as_before() -> None:
    wait = Option[float]("wait", "How long.", default=300.0, parse=parse_duration)
    limit = Option[float | None]("limit", "Maybe.", default=None, parse=optional(parse_duration))
    count = Option[float]("count", "A number.", default=300.0, parse=float)
    secret = Option[float]("secret-wait", "A secret duration.", default=60.0, parse=parse_duration, secret=True)
    assert (wait.is_duration, limit.is_duration, count.is_duration) == (True, True, False)
    assert (wait.display(300.0), wait.text(300.0)) == ("5m", "5m")
    assert (limit.display(90.0), limit.display(None), limit.text(None)) == ("90s", "None", "None")
    assert (count.display(300.0), count.text(300.0)) == ("300.0", "300.0")
    assert secret.display(60.0) == "<set>"
