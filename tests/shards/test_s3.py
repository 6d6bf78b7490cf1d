"""``--report-s3`` and ``report merge s3://...`` against moto's S3 server (as the fluent plugin's sandbox
add-on runs it): shards store their reports under the prefix, the merge lists and reads them there, a
missing one is named, and an S3 that cannot be reached is one line, never a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunCli

pytest.importorskip("moto.server", reason="moto's S3 server is the fluent plugin's sandbox extra")

BUCKET = "shard-reports"
CHECKS = ("sleeper-1", "sleeper-2", "exclusive-a", "exclusive-b", "failing")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as stream:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=stream, stderr=stream
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT"), timeout=2):
                    break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"moto did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def s3_environment(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS settings as a Job would have them; moto takes any keys."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTSHARDS000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "shard-test-secret-access-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return s3_endpoint


def keys(endpoint: str, prefix: str) -> list[str]:
    with urllib.request.urlopen(f"{endpoint}/{BUCKET}?list-type=2&prefix={prefix}", timeout=10) as response:
        body = response.read().decode()
    return sorted(part.split("</Key>")[0] for part in body.split("<Key>")[1:])


def test_shards_store_in_s3_and_the_merge_reads_them_there(
    run_cli: RunCli, s3_environment: str, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.json"
    run_cli("run", *CHECKS, "--clusters", "alpha,beta", "--report-json", str(whole))
    url = f"s3://{BUCKET}/runs/nightly"  # no trailing slash: still a folder
    for index in (1, 2, 3):
        shard = run_cli("run", *CHECKS, "--clusters", "alpha,beta", "--shard", f"{index}/3", "--run-id", "in-s3",
                        "--report-s3", url)  # fmt: skip
        assert shard.code in (0, 1), shard.err[-2000:]
        assert [e["event"] for e in shard.events() if e["event"].startswith("shard.")] == ["shard.report_stored"]
    assert keys(s3_environment, "runs/") == [f"runs/nightly/in-s3.shard-{index}-of-3.json" for index in (1, 2, 3)]
    merged_path = tmp_path / "merged.json"
    result = run_cli("report", "merge", url + "/", "--report-json", str(merged_path), "--log-format", "json")
    assert result.code == 1
    merged = json.loads(merged_path.read_text())
    assert {(r["cluster"], r["check"], r["outcome"]) for r in merged["results"]} == {
        (r["cluster"], r["check"], r["outcome"]) for r in json.loads(whole.read_text())["results"]
    }
    assert merged["shard"]["missing"] == []
    assert "shard-test-secret-access-key" not in result.out + result.err


def test_a_shard_missing_from_s3_is_named(run_cli: RunCli, s3_environment: str, tmp_path: Path) -> None:
    url = f"s3://{BUCKET}/partial/"
    for index in (1, 3):
        run_cli("run", *CHECKS, "--clusters", "alpha,beta", "--shard", f"{index}/3", "--run-id", "holey",
                "--report-s3", url)  # fmt: skip
    merged_path = tmp_path / "merged.json"
    result = run_cli("report", "merge", url, "--report-json", str(merged_path), "--log-format", "json")
    assert result.code == 1
    assert "MISSING: 2/3" in result.out
    assert json.loads(merged_path.read_text())["shard"]["missing"] == [2]


def test_an_unreachable_s3_fails_the_shard_and_the_merge_in_one_line(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTSHARDS000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "shard-test-secret-access-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    shard = run_cli("run", "sleeper-1", "--clusters", "alpha", "--shard", "1/2", "--run-id", "nowhere",
                    "--report-s3", f"s3://{BUCKET}/x/")  # fmt: skip
    assert shard.code == 1, "the checks passed, but the merge will not find this shard's report"
    (failed,) = [e for e in shard.events() if e["event"] == "shard.report_failed"]
    assert failed["location"] == f"s3://{BUCKET}/x/" and "put s3://" in failed["reason"]
    merge = run_cli("report", "merge", f"s3://{BUCKET}/x/")
    assert merge.code == 1
    (line,) = [line for line in merge.err.splitlines() if not line.startswith("{")]  # the rest are events
    assert line.startswith("kibertas-async: error: list s3://shard-reports/x/: ") and "Traceback" not in merge.err
    assert "shard-test-secret-access-key" not in shard.err + merge.err
