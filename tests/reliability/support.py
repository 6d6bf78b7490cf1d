"""What the reliability tests share: a ``kibertas-async`` child process with the synthetic checks, and
the objects carrying our labels that are still in a cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl
from tests.conftest import SYNTHETIC_PLUGIN_DIR, read_journal

MANAGED = "app.kubernetes.io/managed-by=kibertas-async"
LABELLED_KINDS = "namespaces,configmaps,deployments,services,ingresses,pods,secrets,serviceaccounts"


def synthetic_env(kubeconfig: Path, **extra: str) -> dict[str, str]:
    """A child's environment: the synthetic checks only, the sandbox's kubeconfig."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIBERTAS_ASYNC_")}
    env["PYTHONPATH"] = str(SYNTHETIC_PLUGIN_DIR)
    env["KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["KUBECONFIG"] = str(kubeconfig)
    env.update(extra)
    return env


def start_synthetic(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """``kibertas-async ARGS --plugin kibertas_async_synthetic`` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "kibertas_async", *args, "--plugin", "kibertas_async_synthetic"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_journal(path: Path, event: str, count: int, process: subprocess.Popen[str]) -> None:
    """Until the child journalled ``count`` ``event`` lines (bounded by the test's timeout)."""
    while sum(entry["event"] == event for entry in read_journal(path)) < count:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)


def labelled_leftovers(sandbox: Sandbox, cluster: str, selector: str = MANAGED) -> list[str]:
    """Objects carrying our labels still in ``cluster`` (namespaces that are Terminating included)."""
    listed = kubectl(sandbox, cluster, "get", LABELLED_KINDS, "-A", "-l", selector, "-o", "name")
    return listed.stdout.split()
