"""A real terminal for tests: one tmux pane on a private tmux server, running one command.

The command runs in the pane's foreground as it would from a person's shell: a key typed into the pane
(``C-c``) reaches it, and a signal can be sent to :meth:`Terminal.pid`. A small ``sh`` around it writes
its exit code to a file (tmux's own record of it is sometimes missing when a command ends quickly) and
outlives a Ctrl-C (its trap runs only after the command ended); the pane stays after it all ended
(``remain-on-exit``), for the last screen.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from kibertas_async.testing import ci_requires_sandbox

WAIT_GUARD = 300.0
"""Bound on any wait for the screen or the exit (a guard against a hung test, not a timing assertion)."""


def tmux_or_skip() -> str:
    """The tmux binary; skips the test when there is none (fails when ``$CI`` is true)."""
    found = shutil.which("tmux")
    if found is None:
        message = "tmux is not installed (scripts/install installs it from Debian)"
        if ci_requires_sandbox():
            pytest.fail(f"CI is set: {message}", pytrace=False)
        pytest.skip(message)
    return found


class Terminal:
    """A ``width`` x ``height`` tmux pane (no status line) on its own server socket in ``directory``."""

    def __init__(self, tmux: str, directory: Path, *, width: int, height: int) -> None:
        self._tmux = tmux
        self.width, self.height = width, height
        directory.mkdir(parents=True, exist_ok=True)
        self._socket = directory / "tmux.sock"
        self._raw = directory / "pane.out"
        self._exit_file = directory / "exit-code"
        self._config = directory / "tmux.conf"
        self._config.write_text("set -g status off\nset -g remain-on-exit on\nset -g history-limit 20000\n")

    def start(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """Run ``argv`` in the pane with the environment ``env`` (the tmux server starts with it; ``env``
        runs the command with it, so a ``TERM`` there overrides the pane's own)."""
        size = ["-x", str(self.width), "-y", str(self.height)]
        assignments = [f"{name}={value}" for name, value in env.items()]
        wrapper = ["sh", "-c", 'trap true INT; "$@"; echo $? > "$0"', str(self._exit_file)]
        self._tmux_command(
            ["new-session", "-d", "-s", "board", *size, "--", *wrapper, "env", *assignments, *argv], env=dict(env)
        )
        # Every byte the command writes, escape sequences included (a dead pane's cursor flag says nothing).
        self._tmux_command(["pipe-pane", "-o", "-t", "board", f"cat >> '{self._raw}'"])

    def screen(self) -> str:
        """What the pane shows now, a line per terminal row (wrapped text stays wrapped)."""
        return _without_dead_notice(self._tmux_command(["capture-pane", "-p", "-t", "board"]))

    def everything(self) -> str:
        """The pane's whole history, scrolled-off lines included, then what it shows now."""
        return _without_dead_notice(self._tmux_command(["capture-pane", "-p", "-S", "-", "-E", "-", "-t", "board"]))

    def wait_for(self, predicate: Callable[[str], bool], what: str) -> str:
        """Poll the screen until ``predicate(screen)``; the screen then."""
        deadline = time.monotonic() + WAIT_GUARD
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            if self._exit_file.exists():
                raise AssertionError(f"the command ended before the screen showed {what}:\n{self.everything()}")
            time.sleep(0.2)
        raise AssertionError(f"the screen never showed {what}:\n{screen}")

    def wait_exit(self) -> int:
        """Wait for the command to end; its exit code."""
        deadline = time.monotonic() + WAIT_GUARD
        while time.monotonic() < deadline:
            written = self._exit_file.read_text() if self._exit_file.exists() else ""
            if written.endswith("\n"):
                return int(written)
            time.sleep(0.2)
        raise AssertionError(f"the command did not end:\n{self.screen()}")

    def send_keys(self, *keys: str) -> None:
        """Type ``keys`` (tmux key names: ``C-c``) into the pane."""
        self._tmux_command(["send-keys", "-t", "board", *keys])

    def pid(self) -> int:
        """The command's process id (the one child of the pane's ``sh``)."""
        shell = int(self._value("pane_pid"))
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        assert len(children) == 1, f"the pane's shell has children {children}"
        return int(children[0])

    def cursor_visible(self) -> bool:
        """Whether the pane shows its cursor now (a live display hides it while it draws)."""
        return self._value("cursor_flag") == "1"

    def cursor_shown_at_end(self) -> bool:
        """Whether the command's output left the cursor shown: no hide (``ESC [?25l``) after its last show."""
        raw = self._raw.read_bytes() if self._raw.exists() else b""
        return raw.rfind(b"\x1b[?25h") > raw.rfind(b"\x1b[?25l")

    def close(self) -> None:
        """Stop the tmux server and whatever still runs in it."""
        if self._socket.exists():
            subprocess.run([self._tmux, "-S", str(self._socket), "kill-server"], capture_output=True, check=False)

    def _value(self, name: str) -> str:
        return self._tmux_command(["display-message", "-p", "-t", "board", f"#{{{name}}}"]).strip()

    def _tmux_command(self, args: list[str], env: dict[str, str] | None = None) -> str:
        command = [self._tmux, "-S", str(self._socket), "-f", str(self._config), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env, timeout=60)
        assert done.returncode == 0, f"{' '.join(args[:1])}: {done.stderr}"
        return done.stdout


def _without_dead_notice(text: str) -> str:
    """``text`` without the line tmux writes into a pane whose command ended (``Pane is dead (status 0, ...)``)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("Pane is dead (")) + "\n"
