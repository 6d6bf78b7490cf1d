"""Waiting in a test for something the sandbox does on its own time (a controller, the authorizer, DNS).

:func:`eventually` is the kit's one poll loop: a test states what it waits for, how to look, and when the
look is good enough; it gets the value that satisfied it, or an assertion naming what it waited for and
what it last saw. The deadline bounds a wait for the sandbox; it is never a performance assertion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
"""Seconds before :func:`eventually` gives up: generous, for a busy 2-core machine."""


def _truthy(value: object) -> bool:
    return bool(value)


def eventually(
    what: str,
    look: Callable[[], T],
    until: Callable[[T], object] = _truthy,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    every: float = 0.2,
) -> T:
    """Call ``look()`` every ``every`` seconds until ``until(value)`` is true (by default: the value is);
    return that value. After ``timeout`` seconds: ``AssertionError("WHAT: not after Ns; last seen VALUE")``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = look()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not after {timeout:g}s; last seen {value!r}")
        time.sleep(every)
