"""Start, identify and stop the sandbox's server processes.

Every process runs in its own session (so its own process group): a signal to the group reaches
anything it spawned, and a Ctrl-C in the user's terminal does not reach it. A process is identified by
its pid *and* its start time, so a pid reused after a crash is never signalled by mistake.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kibertas_async.sandbox.errors import SandboxError

_PR_SET_PDEATHSIG = 1
_POLL_INTERVAL = 0.05

STOP_TIMEOUT = 10.0
"""Seconds a process gets to exit after SIGTERM before it is sent SIGKILL."""


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one long-lived server process."""

    name: str
    """Unique within the sandbox, e.g. ``sandbox-1/kube-apiserver``; used in messages and state."""
    argv: tuple[str, ...]
    log_file: Path
    """stdout and stderr go here; its last lines are quoted when the process fails."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Added to the sandbox's own environment."""


class ManagedProcess:
    """One running (or stopped) instance of a :class:`ProcessSpec`."""

    def __init__(self, spec: ProcessSpec, pid: int | None = None, start_ticks: int | None = None) -> None:
        self.spec = spec
        self.pid = pid
        self.start_ticks = start_ticks
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self, *, die_with_parent: bool) -> None:
        """Launch the process in a new session, appending its output to the spec's log file.

        With ``die_with_parent`` the kernel kills it (SIGKILL) when its parent dies, even by SIGKILL:
        that is how a test session guarantees nothing outlives it. The kernel acts when the *thread*
        that started the process ends, so such processes may only be started from the main thread.

        :raises SandboxError: ``die_with_parent`` from a thread other than the main thread.
        """
        if die_with_parent and threading.current_thread() is not threading.main_thread():
            raise SandboxError(
                f"start {self.spec.name} from the main thread: it is bound to die with the thread that starts it"
            )
        self.spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.spec.log_file, "ab") as log:
            self._popen = subprocess.Popen(
                self.spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.spec.env},
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()) if die_with_parent else None,
            )
        self.pid = self._popen.pid
        self.start_ticks = _start_ticks(self.pid)

    def is_alive(self) -> bool:
        """Whether this very process (same pid and start time) exists and has not exited."""
        if self.pid is None:
            return False
        if self._popen is not None:
            # Our own child: waitpid is authoritative (and reaps it once it has exited).
            return self._popen.poll() is None
        stat = _read_stat(self.pid)
        return stat is not None and stat[1] != "Z" and int(stat[20]) == self.start_ticks

    def is_paused(self) -> bool:
        """Whether this process is alive and stopped by a signal (SIGSTOP from :meth:`pause`): state ``T``."""
        if not self.is_alive():
            return False
        stat = _read_stat(self.pid) if self.pid is not None else None
        return stat is not None and stat[1] == "T"

    def exit_code(self) -> int | None:
        """The exit status, when we started the process ourselves and it has exited."""
        return None if self._popen is None else self._popen.poll()

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the process's group (its leader is the process itself)."""
        if self.pid is not None and self.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` seconds, and reap it."""
        if not self.is_alive():
            self._reap()
            return
        self.signal_group(signal.SIGTERM)
        # A process stopped by SIGSTOP (see :meth:`pause`) only acts on SIGTERM once continued.
        self.signal_group(signal.SIGCONT)
        if not self._wait_exit(timeout):
            self.signal_group(signal.SIGKILL)
            self._wait_exit(timeout)
        self._reap()

    def pause(self) -> None:
        """Freeze the process group with SIGSTOP: its sockets stay open but nothing answers.

        Returns once the process is stopped (the kernel delivers the signal asynchronously), so what the
        caller does next already meets a frozen process.
        """
        self.signal_group(signal.SIGSTOP)
        self._wait_for(self.is_paused, True)

    def resume(self) -> None:
        """Undo :meth:`pause`; returns once the process runs again."""
        self.signal_group(signal.SIGCONT)
        self._wait_for(self.is_paused, False)

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the process's log."""
        try:
            text = self.spec.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:])

    def to_json(self) -> dict[str, Any]:
        """What the state file records about this process."""
        return {
            "name": self.spec.name,
            "argv": list(self.spec.argv),
            "log_file": str(self.spec.log_file),
            "env": dict(self.spec.env),
            "pid": self.pid,
            "start_ticks": self.start_ticks,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ManagedProcess:
        """Rebuild a process record written by :meth:`to_json` (possibly by another Python process)."""
        spec = ProcessSpec(
            name=data["name"], argv=tuple(data["argv"]), log_file=Path(data["log_file"]), env=data["env"]
        )
        return cls(spec, pid=data["pid"], start_ticks=data["start_ticks"])

    def _wait_for(self, condition: Callable[[], bool], expected: bool, timeout: float = STOP_TIMEOUT) -> None:
        """Poll ``condition`` until it is ``expected``, the process has exited, or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while condition() is not expected and self.is_alive() and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL / 5)

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.is_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_INTERVAL)
        return True

    def _reap(self) -> None:
        # Only our own children can (and must) be reaped; others are reaped by their new parent.
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=STOP_TIMEOUT)


def stop_all(processes: Sequence[ManagedProcess], timeout: float = STOP_TIMEOUT) -> None:
    """Stop ``processes`` together: SIGTERM to all, then SIGKILL to whoever is left after ``timeout``."""
    for process in processes:
        process.signal_group(signal.SIGTERM)
        process.signal_group(signal.SIGCONT)
    deadline = time.monotonic() + timeout
    for process in processes:
        process.stop(max(0.0, deadline - time.monotonic()))


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    # Looked up here, in the parent: between fork and exec the child should only make the call
    # (loading a library there could deadlock on a lock another thread held at fork time).
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would ever kill us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return set_parent_death_signal


def _read_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat without the command name: field N of proc(5) is at index N-2."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    before, _, after = raw.rpartition(")")
    return [before.split(" (", 1)[0], *after.split()]


def _start_ticks(pid: int) -> int | None:
    stat = _read_stat(pid)
    return None if stat is None else int(stat[20])
