"""The cleanup stack's two refinements: ``begin`` parts start at once and together, ``settle`` actions wait
last, after ``on_undone``; and neither weakens the old guarantees (time box, --keep, failures reported)."""

from __future__ import annotations

import anyio
import pytest

from kibertas_async.checks.cleanup import CleanupGuard, CleanupStack

pytestmark = pytest.mark.anyio


def stack(**overrides: object) -> CleanupStack:
    settings: dict[str, object] = {"keep": False, "action_timeout": 5.0, "guard": CleanupGuard()}
    settings.update(overrides)
    return CleanupStack(**settings)  # type: ignore[arg-type]


async def test_begins_run_first_and_together_then_undo_newest_first_then_settle() -> None:
    journal: list[str] = []
    both_begun = anyio.Event()

    def recorder(what: str):  # type: ignore[no-untyped-def]
        async def record() -> None:
            journal.append(what)

        return record

    async def begin(name: str) -> None:
        journal.append(f"begin {name}")
        if len([entry for entry in journal if entry.startswith("begin")]) == 2:
            both_begun.set()
        with anyio.fail_after(2):  # each begin waits for the other: only possible when they run together
            await both_begun.wait()

    cleanup = stack()
    cleanup.push("namespace one", recorder("settle one"), begin=lambda: begin("one"), settle=True)
    cleanup.push("deployment", recorder("undo deployment"))
    cleanup.push("namespace two", recorder("settle two"), begin=lambda: begin("two"), settle=True)
    cleanup.push("service", recorder("undo service"))

    results = await cleanup.run(on_undone=lambda: journal.append("undone"))

    assert sorted(journal[:2]) == ["begin one", "begin two"]
    assert journal[2:] == ["undo service", "undo deployment", "undone", "settle two", "settle one"]
    assert [(r.description, r.status) for r in results] == [
        ("service", "done"),
        ("deployment", "done"),
        ("namespace two", "done"),
        ("namespace one", "done"),
    ]


async def test_a_failing_begin_is_left_to_its_action_and_keep_runs_nothing() -> None:
    calls: list[str] = []

    async def failing_begin() -> None:
        calls.append("begin")
        raise RuntimeError("the API server said no")

    async def action() -> None:
        calls.append("action")

    cleanup = stack()
    cleanup.push("namespace", action, begin=failing_begin, settle=True)
    [result] = await cleanup.run()
    assert calls == ["begin", "action"] and result.status == "done"

    calls.clear()
    kept = stack(keep=True)
    kept.push("namespace", action, begin=failing_begin, settle=True)
    [result] = await kept.run(on_undone=lambda: calls.append("undone"))
    assert result.status == "kept"
    assert calls == ["undone"]


async def test_a_begin_that_hangs_is_time_boxed_and_the_actions_still_run() -> None:
    ran: list[str] = []

    async def hanging_begin() -> None:
        await anyio.sleep_forever()

    async def action() -> None:
        ran.append("action")

    cleanup = stack(action_timeout=0.2)
    cleanup.push("namespace", action, begin=hanging_begin, settle=True)
    [result] = await cleanup.run()
    assert ran == ["action"] and result.status == "done"
