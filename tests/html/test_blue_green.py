"""Blue/green in one look, end to end on the sandbox: one `run --compare` where the new cluster has a
degraded add-on (its datadog-agent DaemonSet runs no pod) and another add-on at a different version (its
fluentd DaemonSet's image). The comparison names both; the Chatwork message leads with the regression;
the HTML report shows it in a browser; the Datadog stand-in received the event and the metrics."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from kibertas_async.sandbox.runner import Sandbox
from kibertas_async.testing import kubectl
from kibertas_async.testing.plugin import NothingLeft
from kibertas_async.testing.runner import CheckRunner
from kibertas_async.testing.workloads import daemonset_on_no_node
from kibertas_async_chatwork.standin import ChatworkStandin
from kibertas_async_datadog.sandbox import api_key_for
from tests.html.test_browser import DESKTOP, one, screenshot, show

pytestmark = pytest.mark.anyio

OLD, NEW = "sandbox-1", "sandbox-2"
NEW_FLUENTD = "fluent/fluentd-kubernetes-daemonset:v1.18-debian-s3"
ROOM = "4242"
WALKTHROUGH_SCREENSHOT = Path(__file__).parents[2] / "docs" / "img" / "blue-green-report.png"


def rolled_out(sandbox: Sandbox, namespace: str, daemonset: str) -> None:
    kubectl(sandbox, NEW, "-n", namespace, "rollout", "status", f"daemonset/{daemonset}", "--timeout=120s")


@pytest.fixture
def new_cluster_drifted(sandbox: Sandbox) -> Iterator[None]:
    """On the new cluster: the datadog agent selects no node (degraded) and fluentd runs another image
    tag (a different version); both restored and rolled out afterwards."""
    with daemonset_on_no_node(sandbox, NEW, "datadog", "datadog-agent"):
        image = kubectl(
            sandbox,
            NEW,
            "-n",
            "logging",
            "get",
            "daemonset/fluentd",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ).stdout.strip()
        kubectl(sandbox, NEW, "-n", "logging", "set", "image", "daemonset/fluentd", f"fluentd={NEW_FLUENTD}")
        rolled_out(sandbox, "logging", "fluentd")
        try:
            yield
        finally:
            kubectl(sandbox, NEW, "-n", "logging", "set", "image", "daemonset/fluentd", f"fluentd={image}")
            rolled_out(sandbox, "logging", "fluentd")


@pytest.fixture
async def chatwork() -> AsyncIterator[ChatworkStandin]:
    async with ChatworkStandin(rooms={ROOM}) as standin:
        yield standin


def datadog_intake(sandbox: Sandbox) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """The old cluster's Datadog stand-in URL (the results go there) and what its intake holds now."""
    settings = yaml.safe_load(sandbox.run_config.read_text(encoding="utf-8"))
    url = str(settings["clusters"][OLD]["datadog-api-url"])
    with urllib.request.urlopen(f"{url}/_standin/intake", timeout=5) as response:
        return url, json.load(response)


async def test_a_blue_green_run_names_the_regression_and_the_version_change_everywhere(
    sandbox: Sandbox,
    check_runner: CheckRunner,
    new_cluster_drifted: None,
    chatwork: ChatworkStandin,
    browser: Any,
    tmp_path: Path,
    nothing_left: NothingLeft,
) -> None:
    page = tmp_path / "report.html"
    datadog_url, before = datadog_intake(sandbox)
    args = (
        # A timing regression is shared-CPU noise here; the outcome and the version are what is tested.
        "datadog-agent", "fluent", "--compare", f"{OLD},{NEW}", "--regression-factor", "1000",
        "--datadog-wait-timeout", "5s",
        "--report-html", str(page),
        "--datadog-results", "--datadog-results-url", datadog_url, "--datadog-results-api-key", api_key_for(OLD),
    )  # fmt: skip
    env = {"CHATWORK_API_TOKEN": chatwork.token, "CHATWORK_ROOM_ID": ROOM, "CHATWORK_API_URL": chatwork.api_url}

    def blue_green_run() -> Any:
        return check_runner.run(*args, env=env, in_process=False)

    run = await anyio.to_thread.run_sync(blue_green_run)  # the stand-in answers on this loop meanwhile

    assert run.code == 1, run.err[-3000:]
    assert run.report_json is not None
    comparison = run.report_json["comparison"]
    assert comparison["verdict"] == f"NG: {NEW} has 1 regression against {OLD}"
    [regression] = comparison["regressions"]
    assert regression["check"] == "datadog-agent" and regression["kind"] == "outcome"
    fluent = next(check for check in comparison["checks"] if check["check"] == "fluent")
    assert fluent["old"] == fluent["new"] == "passed"
    assert fluent["versions"], fluent
    [version] = [v for v in fluent["versions"] if v["name"].startswith("fluentd")]
    assert (version["old"], version["new"], version["changed"]) == ("v1-debian-s3", "v1.18-debian-s3", True)

    # Chatwork: one message, the verdict first, then the regression, then the rest.
    [message] = chatwork.messages
    body = message.body
    assert body.startswith("[info][title]kibertas-async NG"), body
    lines = body.splitlines()
    assert f"blue/green {OLD} → {NEW}: 1 regression" in lines[0], body
    assert lines[1].startswith(f"REGRESSION datadog-agent — {regression['message']}"), body
    assert lines[2] == "versions — fluentd v1-debian-s3 → v1.18-debian-s3", body
    assert "matches no node" in body, body  # the failure's diagnostics name the degraded DaemonSet

    # The HTML report, in a browser.
    show(browser, page, DESKTOP)
    assert comparison["verdict"] in one(browser, "#verdict").text
    row = one(browser, '#comparison tr.check[data-check="datadog-agent"]')
    assert "regression" in row.get_attribute("class").split()
    assert "v1.18-debian-s3" in one(browser, "#comparison").text
    picture = screenshot(browser, tmp_path / "blue-green.png", DESKTOP)
    if os.environ.get("KIBERTAS_ASYNC_UPDATE_SCREENSHOT") == "1":  # the README walkthrough's picture
        shutil.copyfile(picture, WALKTHROUGH_SCREENSHOT)

    # Datadog: the NG event of the new cluster and the metrics, tagged with the fluentd versions.
    _, after = datadog_intake(sandbox)
    events = after["events"][len(before["events"]) :]
    series = after["series"][len(before["series"]) :]
    assert sorted(event["title"] for event in events) == [
        f"kibertas-async NG — {NEW}",
        f"kibertas-async OK — {OLD}",
    ]
    ok = {
        tuple(sorted(tag for tag in s["tags"] if tag.split(":")[0] in ("cluster", "check"))): s["points"][0]["value"]
        for s in series
        if s["metric"] == "kibertas_async.check.ok"
    }
    assert ok == {
        ("check:datadog-agent", f"cluster:{OLD}"): 1.0,
        ("check:datadog-agent", f"cluster:{NEW}"): 0.0,
        ("check:fluent", f"cluster:{OLD}"): 1.0,
        ("check:fluent", f"cluster:{NEW}"): 1.0,
    }
    fluent_tags = {tag for s in series if "check:fluent" in s["tags"] for tag in s["tags"]}
    assert {"addon_version:v1-debian-s3", "addon_version:v1.18-debian-s3"} <= fluent_tags
    nothing_left(run)
