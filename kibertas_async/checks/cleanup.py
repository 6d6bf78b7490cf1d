"""The cleanup stack: undo actions registered as objects are created, run last-created-first.

Cleanup is shielded from cancellation (a timeout or a signal must not leave objects behind) and bounded
in time (a hung API server must not hang the tool); a second signal abandons it on purpose.

Two refinements keep it from costing more time than it must, without giving up any guarantee:

- an action may have a ``begin`` part that runs at once when cleanup starts, for every such action
  together (a namespace's DELETE request: the namespace controller waits 5 s after a namespace is marked
  for deletion before it starts emptying it, so that wait overlaps the other undo actions);
- an action marked ``settle`` only waits for what its ``begin`` set going (a namespace disappearing). The
  other actions run first, then ``on_undone`` is called (the engine lets the next check of an
  ``exclusive`` group start then: every object the check made is deleted, only the waits are left), then
  the settle actions run. Each action is still time-boxed and reported as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from kibertas_async.results import CleanupResult

CleanupAction = Callable[[], Awaitable[None]]


@dataclass
class CleanupGuard:
    """Run-wide switch shared by every cleanup stack: lets a second signal abandon all cleanup."""

    abandoned: bool = False
    _scopes: set[anyio.CancelScope] = field(default_factory=set)

    def abandon(self) -> None:
        """Stop every cleanup now; what is not done is reported as ``abandoned``."""
        self.abandoned = True
        for scope in list(self._scopes):
            scope.cancel()


@dataclass(eq=False)
class _Entry:
    description: str
    action: CleanupAction
    begin: CleanupAction | None = None
    settle: bool = False


class CleanupStack:
    """Undo actions of one check on one cluster."""

    def __init__(self, *, keep: bool, action_timeout: float, guard: CleanupGuard) -> None:
        self._actions: list[_Entry] = []
        self._keep = keep
        self._action_timeout = action_timeout
        self._guard = guard

    def push(
        self, description: str, action: CleanupAction, *, begin: CleanupAction | None = None, settle: bool = False
    ) -> object:
        """Register an undo action; call it right after creating what it undoes (or, when the undo can
        tell whether there is anything to undo, right before). Returns a handle for :meth:`discard`.

        :param begin: started at once when cleanup starts, together with every other ``begin`` (a
            request whose effect takes a while); ``action`` then finishes the job (and must do all of it
            if ``begin`` failed or did not finish in time: it is not told).
        :param settle: ``action`` only waits: run it after the other actions and after ``on_undone``.
        """
        entry = _Entry(description, action, begin, settle)
        self._actions.append(entry)
        return entry

    def discard(self, handle: object) -> None:
        """Forget an action registered with :meth:`push` (what it would undo was never made)."""
        self._actions = [entry for entry in self._actions if entry is not handle]

    def __len__(self) -> int:
        return len(self._actions)

    async def run(
        self,
        on_result: Callable[[CleanupResult], None] | None = None,
        on_undone: Callable[[], None] | None = None,
    ) -> list[CleanupResult]:
        """Start every ``begin``, then run every action newest first (the settle ones last, after
        ``on_undone``), each shielded and time-boxed; never raises."""
        entries, self._actions = list(reversed(self._actions)), []
        await self._begin_all([entry.begin for entry in entries if entry.begin is not None])
        results: list[CleanupResult] = []
        for settling in (False, True):
            if settling and on_undone is not None:
                on_undone()
            for entry in (e for e in entries if e.settle is settling):
                result = await self._run_one(entry.description, entry.action)
                results.append(result)
                if on_result is not None:
                    on_result(result)
        return results

    async def _begin_all(self, begins: list[CleanupAction]) -> None:
        """Every ``begin`` at once, shielded and time-boxed; a failure is left to its action."""
        if not begins or self._keep or self._guard.abandoned:
            return

        async def begin_one(begin: CleanupAction) -> None:
            with contextlib.suppress(Exception):
                await begin()

        with anyio.CancelScope(shield=True) as scope:
            self._guard._scopes.add(scope)
            try:
                with anyio.move_on_after(self._action_timeout):
                    async with anyio.create_task_group() as group:
                        for begin in begins:
                            group.start_soon(begin_one, begin)
            finally:
                self._guard._scopes.discard(scope)

    async def _run_one(self, description: str, action: CleanupAction) -> CleanupResult:
        if self._keep:
            return CleanupResult(description, "kept", "--keep was given")
        if self._guard.abandoned:
            return CleanupResult(description, "abandoned", "a second signal abandoned cleanup")
        with anyio.CancelScope(shield=True) as scope:
            self._guard._scopes.add(scope)
            try:
                with anyio.move_on_after(self._action_timeout) as deadline:
                    await action()
            except Exception as error:
                return CleanupResult(description, "failed", f"{type(error).__name__}: {error}")
            finally:
                self._guard._scopes.discard(scope)
        if scope.cancelled_caught or self._guard.abandoned:
            return CleanupResult(description, "abandoned", "a second signal abandoned cleanup")
        if deadline.cancelled_caught:
            return CleanupResult(description, "timed out", f"not finished within {self._action_timeout:g}s")
        return CleanupResult(description, "done")
