"""The proof on real clusters: 6 sandbox clusters, run as 3 shards by 3 ``kibertas-async`` processes at
once (as an Indexed Job's pods would), merged, give the same (cluster, check, outcome) set as one
unsharded run; a missing shard's report is named by the merge; and ``report merge --job`` takes the run
from a finished Indexed Job.

The checks are cheap synthetic ones: ``kube-roundtrip`` (a namespace and a ConfigMap, created, watched
and deleted on the cluster), an ``exclusive`` pair, a sleeper and an NG one. The clusters run without
add-ons (no nodes are needed for these checks).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl
from tests.conftest import SYNTHETIC_PLUGIN_DIR
from tests.shards.conftest import CLUSTERS

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(900)]

CHECKS = ("kube-roundtrip", "exclusive-a", "exclusive-b", "sleeper-1", "failing")
RUN_TIMEOUT = 600


def environment(six_kubeconfig: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIBERTAS_ASYNC_")}
    env.pop("JOB_COMPLETION_INDEX", None)
    env.update(
        PYTHONPATH=str(SYNTHETIC_PLUGIN_DIR),
        KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD="1",
        KUBECONFIG=str(six_kubeconfig),
        **extra,
    )
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``kibertas-async ARGS``, its event stream (stderr) into ``log``."""
    command = [sys.executable, "-m", "kibertas_async", *args, "--log-format", "json"]
    with log.open("wb") as stream:  # the child has its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stream)


def run_args(*extra: str) -> list[str]:
    return ["run", *CHECKS, "--plugin", "kibertas_async_synthetic", "--clusters", ",".join(CLUSTERS), *extra]


def outcomes(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(r["cluster"], r["check"], r["outcome"]) for r in report["results"]}


@pytest.fixture(scope="module")
def sharded_run(six_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The unsharded run and the 3 shards, all at once (6 clusters, 4 processes); their outputs."""
    work = tmp_path_factory.mktemp("sharded-run")
    reports = work / "reports"
    reports.mkdir()
    whole = work / "whole.json"
    unsharded = start(
        run_args("--report-json", str(whole), "--run-id", "unsharded"), environment(six_kubeconfig), work / "u.log"
    )
    shards = [
        # As an Indexed Job's pods: the index and the count from the environment, one run id for all.
        start(
            run_args("--report-dir", str(reports)),
            environment(six_kubeconfig, JOB_COMPLETION_INDEX=str(index), KIBERTAS_ASYNC_SHARDS="3",
                        KIBERTAS_ASYNC_RUN_ID="sharded-on-six"),
            work / f"shard-{index}.log",
        )
        for index in range(3)
    ]  # fmt: skip
    codes = [process.wait(timeout=RUN_TIMEOUT) for process in [unsharded, *shards]]
    return {
        "work": work,
        "reports": reports,
        "whole": json.loads(whole.read_text()),
        "codes": codes,
        "logs": {path.name: path.read_text()[-3000:] for path in work.glob("*.log")},
    }


def merge(six_kubeconfig: Path, source: Path, out: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "kibertas_async", "report", "merge", str(source), "--report-json", str(out),
         "--log-format", "json", *extra],
        env=environment(six_kubeconfig), capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    return result.returncode, result.stdout, json.loads(out.read_text())


def test_three_shards_on_six_clusters_merge_into_the_unsharded_run(
    sharded_run: dict[str, Any], six_kubeconfig: Path
) -> None:
    assert sharded_run["codes"][0] == 1, sharded_run["logs"]  # "failing" is NG on every cluster
    whole = sharded_run["whole"]
    assert len(whole["results"]) == len(CLUSTERS) * len(CHECKS)
    assert {(r["check"], r["outcome"]) for r in whole["results"]} == {
        ("kube-roundtrip", "passed"), ("exclusive-a", "passed"), ("exclusive-b", "passed"),
        ("sleeper-1", "passed"), ("failing", "failed"),
    }, sharded_run["logs"]  # fmt: skip
    reports = sharded_run["reports"]
    names = sorted(path.name for path in reports.iterdir())
    assert names == [f"sharded-on-six.shard-{index}-of-3.json" for index in (1, 2, 3)], sharded_run["logs"]
    pieces = [json.loads((reports / name).read_text()) for name in names]
    for index, piece in enumerate(pieces, start=1):
        assert (piece["run_id"], piece["shard"]["index"], piece["shard"]["count"]) == ("sharded-on-six", index, 3)
        assert len({r["cluster"] for r in piece["results"]}) == 2, "6 clusters on 3 shards: 2 clusters each"
        assert len(piece["results"]) == 10
        for result in piece["results"]:
            if result["check"] == "kube-roundtrip":
                assert result["api_requests"] > 0 and {c["status"] for c in result["cleanup"]} == {"done"}

    code, out, merged = merge(six_kubeconfig, reports, sharded_run["work"] / "merged.json")
    assert code == 1
    assert outcomes(merged) == outcomes(whole)
    assert len(merged["results"]) == len(whole["results"])
    assert merged["shard"]["merged"] == [1, 2, 3] and merged["shard"]["missing"] == []
    assert sorted(merged["clusters"]) == sorted(CLUSTERS)
    assert merged["kubernetes_versions"] == whole["kubernetes_versions"]
    assert sorted(merged["kubernetes_versions"]) == sorted(CLUSTERS)
    assert "shards: 3 of 3 reported (run sharded-on-six)" in out


def test_a_missing_shard_is_named_and_its_checks_listed(sharded_run: dict[str, Any], six_kubeconfig: Path) -> None:
    partial = sharded_run["work"] / "partial"
    partial.mkdir()
    for index in (1, 3):
        name = f"sharded-on-six.shard-{index}-of-3.json"
        shutil.copy(sharded_run["reports"] / name, partial / name)
    lost = json.loads((sharded_run["reports"] / "sharded-on-six.shard-2-of-3.json").read_text())
    code, out, merged = merge(six_kubeconfig, partial, sharded_run["work"] / "partial.json")
    assert code == 1
    assert "MISSING: 2/3" in out
    assert merged["shard"]["missing"] == [2] and merged["ok"] is False
    errors = {(r["cluster"], r["check"]) for r in merged["results"] if r["outcome"] == "error"}
    assert errors == {(r["cluster"], r["check"]) for r in lost["results"]}
    assert len(merged["results"]) == len(CLUSTERS) * len(CHECKS)


def test_merge_takes_the_run_from_a_finished_indexed_job(
    six_clusters: Sandbox, six_kubeconfig: Path, tmp_path: Path
) -> None:
    """The Job is managed by nobody (spec.managedBy), so the test marks it Complete itself: no node runs
    pods here. Its uid is the run id; its completions the shard count."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "kibertas-async-shards", "namespace": "default"},
        "spec": {
            "completionMode": "Indexed",
            "completions": 2,
            "parallelism": 2,
            "managedBy": "kibertas-async.test/nobody",
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "none"}]}},
        },
    }
    cluster = CLUSTERS[0]
    kubectl(six_clusters, cluster, "create", "-f", "-", input=json.dumps(job))
    try:
        uid = kubectl(
            six_clusters, cluster, "get", "job", "kibertas-async-shards", "-o", "jsonpath={.metadata.uid}"
        ).stdout
        reports = tmp_path / "reports"
        reports.mkdir()
        for index in range(2):
            env = environment(six_kubeconfig, JOB_COMPLETION_INDEX=str(index), KIBERTAS_ASYNC_SHARDS="2",
                              KIBERTAS_ASYNC_RUN_ID=uid)  # fmt: skip
            subprocess.run(
                [sys.executable, "-m", "kibertas_async", "run", "sleeper-1", "failing", "--plugin",
                 "kibertas_async_synthetic", "--clusters", cluster, "--report-dir", str(reports)],
                env=env, capture_output=True, timeout=RUN_TIMEOUT, check=False,
            )  # fmt: skip
        merged_path = tmp_path / "merged.json"
        merger = subprocess.Popen(
            [sys.executable, "-m", "kibertas_async", "report", "merge", str(reports), "--job",
             "kibertas-async-shards", "--namespace", "default", "--context", cluster, "--wait", "5m",
             "--report-json", str(merged_path), "--log-format", "json"],
            env=environment(six_kubeconfig), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(2)
        assert merger.poll() is None, "the merge must wait while the Job runs"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        condition = {"status": "True", "lastTransitionTime": now, "lastProbeTime": now}
        status = {
            "startTime": now,
            "completionTime": now,
            "succeeded": 2,
            "completedIndexes": "0-1",
            "conditions": [{"type": "SuccessCriteriaMet", **condition}, {"type": "Complete", **condition}],
        }
        kubectl(six_clusters, cluster, "patch", "job", "kibertas-async-shards", "--subresource=status",
                "--type=merge", "-p", json.dumps({"status": status}))  # fmt: skip
        out, err = merger.communicate(timeout=120)
        assert merger.returncode == 1, err[-3000:]  # "failing" is NG
        merged = json.loads(merged_path.read_text())
        assert merged["run_id"] == uid
        assert merged["shard"]["count"] == 2 and merged["shard"]["missing"] == []
        assert outcomes(merged) == {(cluster, "sleeper-1", "passed"), (cluster, "failing", "failed")}
        assert f"shards: 2 of 2 reported (run {uid})" in out
    finally:
        kubectl(six_clusters, cluster, "delete", "job", "kibertas-async-shards", "--wait=false", check=False)
