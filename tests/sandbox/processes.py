"""Process-table helpers for tests that must prove nothing is left running."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def live_processes(ids: Iterable[int]) -> list[str]:
    """Processes that are not zombies and whose pid *or process group* is one of ``ids``.

    Zombies do not count: they run nothing and hold no port. (Where PID 1 does not reap orphans,
    as in some VMs and containers without an init, daemons' zombies stay in the table.)
    """
    wanted = set(ids)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, _ppid, process_group = stat.rpartition(")")[2].split()[:3]
        if state != "Z" and (int(entry.name) in wanted or int(process_group) in wanted):
            found.append(f"{entry.name} ({name}, state {state}, group {process_group})")
    return found
