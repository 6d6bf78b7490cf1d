"""R3: the API server restarting mid-create and mid-watch: the check resumes and passes, and leaves
nothing behind; an API server that is down for good is an ERROR naming it, within the connect timeout."""

from __future__ import annotations

import json
import time
from pathlib import Path

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl
from tests.conftest import read_journal
from tests.reliability.support import labelled_leftovers, start_synthetic, synthetic_env, wait_for_journal


def test_a_restart_mid_create_and_mid_watch_is_survived(sandbox: Sandbox, tmp_path: Path) -> None:
    cluster = sandbox.cluster("sandbox-1")
    journal, report = tmp_path / "journal.jsonl", tmp_path / "report.json"
    process = start_synthetic(
        [
            "run",
            "kube-restartable",
            "--clusters",
            "sandbox-1",
            "--synthetic-journal",
            str(journal),
            "--report-json",
            str(report),
            "--log-format",
            "json",
        ],
        synthetic_env(sandbox.kubeconfig),
    )
    wait_for_journal(journal, "ready", 1, process)
    with cluster.apiserver_stopped():
        Path(f"{journal}.create").touch()  # the check's POST now meets a closed port, and retries
        time.sleep(2)
        assert process.poll() is None
        assert not any(entry["event"] == "created" for entry in read_journal(journal))
    wait_for_journal(journal, "created", 1, process)
    namespace = read_journal(journal)[0]["namespace"]
    cluster.restart_apiserver()  # the check is watching for the annotation now: its watch breaks
    kubectl(sandbox, "sandbox-1", "annotate", "configmap", "restartable", "go=yes", "-n", namespace)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    result = json.loads(report.read_text())["results"][0]
    assert result["outcome"] == "passed"
    assert [step["outcome"] for step in result["steps"]] == ["passed", "passed"]
    assert labelled_leftovers(sandbox, "sandbox-1") == []


def test_an_api_server_down_for_good_is_an_error_naming_it(sandbox: Sandbox, tmp_path: Path) -> None:
    cluster = sandbox.cluster("sandbox-2")
    report = tmp_path / "report.json"
    with cluster.apiserver_stopped():
        process = start_synthetic(
            [
                "run",
                "kube-roundtrip",
                "--clusters",
                "sandbox-2",
                "--connect-timeout",
                "3s",
                "--report-json",
                str(report),
                "--log-format",
                "json",
            ],
            synthetic_env(sandbox.kubeconfig),
        )
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err[-2000:]
    result = json.loads(report.read_text())["results"][0]
    assert (result["outcome"], result["step"]) == ("error", "connect to cluster")
    assert cluster.server in result["reason"]
    assert "Traceback" not in err
