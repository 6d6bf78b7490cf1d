"""The cleanup stack: undo actions registered as objects are created, run last-created-first.

Cleanup is shielded from cancellation (a timeout or a signal must not leave objects behind) and bounded
in time (a hung API server must not hang the tool); a second signal abandons it on purpose.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from kibertas_async.engine.results import CleanupResult

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


class CleanupStack:
    """Undo actions of one check on one cluster."""

    def __init__(self, *, keep: bool, action_timeout: float, guard: CleanupGuard) -> None:
        self._actions: list[tuple[str, CleanupAction]] = []
        self._keep = keep
        self._action_timeout = action_timeout
        self._guard = guard

    def push(self, description: str, action: CleanupAction) -> object:
        """Register an undo action; call it right after creating what it undoes (or, when the undo can
        tell whether there is anything to undo, right before). Returns a handle for :meth:`discard`."""
        entry = (description, action)
        self._actions.append(entry)
        return entry

    def discard(self, handle: object) -> None:
        """Forget an action registered with :meth:`push` (what it would undo was never made)."""
        self._actions = [entry for entry in self._actions if entry is not handle]

    def __len__(self) -> int:
        return len(self._actions)

    async def run(self, on_result: Callable[[CleanupResult], None] | None = None) -> list[CleanupResult]:
        """Run every action, newest first, each shielded and time-boxed; never raises."""
        results: list[CleanupResult] = []
        while self._actions:
            description, action = self._actions.pop()
            result = await self._run_one(description, action)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

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
