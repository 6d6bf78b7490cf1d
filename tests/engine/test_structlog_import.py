"""structlog is imported without rich (its exception formatter is never used), and rich still works after."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from kibertas_async.events import configure_logging, get_logger
configure_logging(log_format="console")
before = "rich" in sys.modules
try:
    raise RuntimeError("boom")
except RuntimeError:
    get_logger().exception("failed")
import rich.console
print(json.dumps({"rich_before": before, "rich_after": "rich.console" in sys.modules}))
"""


def test_structlog_comes_without_rich_and_tracebacks_are_still_text() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"rich_before": False, "rich_after": True}
    assert "RuntimeError: boom" in done.stderr and "Traceback (most recent call last)" in done.stderr
