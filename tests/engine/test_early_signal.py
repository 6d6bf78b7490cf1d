"""SIGTERM before the engine listens for signals itself (start-up, plugin loading) ends the process as
SIGINT does: one line, exit 143, no traceback — not a bare kill that a caller cannot tell from a crash."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.conftest import FIXTURES
from tests.engine.conftest import ProcessEnv


def test_sigterm_during_plugin_loading_exits_143_with_one_line(process_env: ProcessEnv) -> None:
    env = process_env(KIBERTAS_ASYNC_DISABLE_PLUGINS="broken")
    env["PYTHONPATH"] += f":{FIXTURES / 'plugins'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "kibertas_async", "run", "sleeper-1", "--plugin", "slow_import"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)  # the interpreter is up; the slow plugin's import holds it in plugin loading
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 143
    assert err.strip() == "kibertas-async: terminated"
