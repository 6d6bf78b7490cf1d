"""The two kinds of output a plugin can add."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from kibertas_async.results import RunInfo, RunReport

__all__ = ["Notifier", "Reporter", "RunInfo"]


@runtime_checkable
class Notifier(Protocol):
    """Sends the run's summary somewhere people read it (a chat room).

    ``notify`` must not raise for delivery problems it can handle; anything it raises is logged and
    never changes the run's exit code. It is given a bounded time (the ``notify-timeout`` option).
    """

    name: str

    async def notify(self, report: RunReport) -> None:
        """Deliver the report."""
        ...


@runtime_checkable
class Reporter(Protocol):
    """Writes the run's report somewhere (a file, the terminal). Called once, at the end."""

    name: str

    def write(self, report: RunReport) -> None:
        """Write the report."""
        ...
