"""The time settings of every rendering hold the relations docs/deploy.md explains:

- activeDeadlineSeconds is after the engine's own run timeout (a slow run ends with TIMEOUT results,
  cleaned up and notified, before the Job controller steps in) and below run timeout + cleanup budget;
- terminationGracePeriodSeconds is above the cleanup budget plus the notification, so the SIGTERM of a
  deadline, a deleted Job or a drained node is followed by a full cleanup before any SIGKILL.

The cleanup budget is the most cleanup actions one check registers (5, the ingress check: host name,
Ingress, Service, Deployment, namespace) times ``--cleanup-timeout``; checks clean up in parallel.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from kibertas_async.engine import settings
from kibertas_async.options import parse_duration
from tests.deploy.conftest import (
    BASE,
    CHART,
    HELM_VARIANTS,
    OVERLAYS,
    documents,
    helm_environment,
    helm_template,
    job_spec,
    kustomize,
)

MAX_CLEANUP_ACTIONS = 5


def option(args: list[str], name: str, default: float) -> float:
    if f"--{name}" not in args:
        return default
    return parse_duration(args[args.index(f"--{name}") + 1])


def check_budget(spec: dict[str, Any]) -> None:
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    # Explicit, so the relation does not hang on a default that may change.
    assert "--run-timeout" in args
    assert "--cleanup-timeout" in args
    run = option(args, "run-timeout", settings.RUN_TIMEOUT.default)
    cleanup = MAX_CLEANUP_ACTIONS * option(args, "cleanup-timeout", settings.CLEANUP_TIMEOUT.default)
    notify = option(args, "notify-timeout", settings.NOTIFY_TIMEOUT.default)
    deadline = spec["activeDeadlineSeconds"]
    grace = pod["terminationGracePeriodSeconds"]
    assert run < deadline < run + cleanup, (run, deadline, cleanup)
    assert grace > cleanup + notify, (grace, cleanup, notify)
    assert spec["backoffLimit"] == 0
    assert pod["restartPolicy"] == "Never"


@pytest.mark.parametrize("directory", [BASE, OVERLAYS / "argocd-postsync", OVERLAYS / "cronjob"], ids=lambda p: p.name)
def test_kustomize_time_budget(directory: Path) -> None:
    check_budget(job_spec(documents(kustomize(directory))))


@pytest.mark.parametrize("variant", list(HELM_VARIANTS))
def test_helm_time_budget(helm: Path, variant: str) -> None:
    check_budget(job_spec(documents(helm_template(helm, *HELM_VARIANTS[variant]))))


def test_helm_derives_the_budget_from_its_timeouts(helm: Path) -> None:
    values = ("--set", "timeouts.run=7200", "--set", "timeouts.cleanup=300", "--set", "timeouts.notify=30")
    spec = job_spec(documents(helm_template(helm, *values)))
    check_budget(spec)
    assert spec["activeDeadlineSeconds"] == 7500
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 5 * 300 + 30 + 60


def test_helm_refuses_timeouts_that_break_the_budget(helm: Path) -> None:
    """A cleanup timeout so short that run + 300 s is not below run + cleanup budget fails the render."""
    result = subprocess.run(
        [str(helm), "template", "kibertas-async", str(CHART), "--set", "timeouts.cleanup=60"],
        capture_output=True,
        text=True,
        timeout=120,
        env=helm_environment(),
    )
    assert result.returncode != 0
    assert "timeouts.cleanup is too short" in result.stderr
