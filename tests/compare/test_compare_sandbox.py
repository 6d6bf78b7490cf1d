"""``run --clusters old=sandbox-1,new=sandbox-2 --compare old,new`` on the real sandbox clusters: the
checks pass on both, the report says each cluster's Kubernetes version and each check's add-on
version, and the comparison finds no regression."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from kibertas_async.sandbox.addons.discovery import RUN_CONFIG_NAME
from kibertas_async.sandbox.runner import Sandbox

CHECKS = ("cert-manager", "datadog-agent", "fluent")
"""A fast subset: one add-on the sandbox runs as a DaemonSet (datadog-agent, fluentd: real versions) and
one it runs outside the cluster (cert-manager: honestly "not found")."""


def test_two_sandbox_clusters_compare_without_regression(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = yaml.safe_load((sandbox.state_dir / RUN_CONFIG_NAME).read_text())["clusters"]
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "clusters": {
                    # Renamed clusters: the Datadog stand-in still knows them by their sandbox names.
                    side: {**settings[context], "datadog-cluster-name": context}
                    for side, context in (("old", "sandbox-1"), ("new", "sandbox-2"))
                }
            }
        ),
        encoding="utf-8",
    )
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kibertas_async",
            "run",
            *CHECKS,
            "--clusters",
            "old=sandbox-1,new=sandbox-2",
            "--kubeconfig",
            str(sandbox.kubeconfig),
            "--config",
            str(config),
            "--compare",
            "old,new",
            # Both sides are the same machine under a shared load: timings are shown, not judged here.
            "--regression-factor",
            "1000",
            "--report-json",
            str(report_path),
            "--log-format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert report_path.exists(), result.stderr[-3000:]
    report = json.loads(report_path.read_text())
    outcomes = {(item["cluster"], item["check"]): item["outcome"] for item in report["results"]}
    assert outcomes == {(side, check): "passed" for side in ("old", "new") for check in CHECKS}, result.stderr[-3000:]
    assert result.returncode == 0, result.stderr[-3000:]

    versions = report["kubernetes_versions"]
    assert set(versions) == {"old", "new"} and all(value.startswith("v1.") for value in versions.values())
    facts = {(item["cluster"], item["check"]): item["facts"] for item in report["results"]}
    for side in ("old", "new"):
        assert facts[(side, "datadog-agent")]["datadog-agent version"] == "7"
        assert facts[(side, "datadog-agent")]["datadog-agent image"] == "gcr.io/datadoghq/agent:7"
        assert facts[(side, "fluent")]["fluentd version"] == "v1-debian-s3"
        assert facts[(side, "cert-manager")]["cert-manager version"].startswith("not found (")

    comparison = report["comparison"]
    assert (comparison["old"], comparison["new"], comparison["ok"], comparison["regressions"]) == (
        "old",
        "new",
        True,
        [],
    )
    assert comparison["kubernetes_version"] == {
        "name": "kubernetes",
        "old": versions["old"],
        "new": versions["new"],
        "changed": False,
        "missing_on": None,
    }
    by_check = {item["check"]: item for item in comparison["checks"]}
    assert {name: (item["old"], item["new"]) for name, item in by_check.items()} == {
        check: ("passed", "passed") for check in CHECKS
    }
    assert [pair["name"] for pair in by_check["fluent"]["versions"]] == ["fluentd"]
    assert "find marker in S3" in [timing["step"] for timing in by_check["fluent"]["timings"]]
    assert "OK: new has no regression against old" in result.stdout
