"""The parts that need no cluster: option parsers, the stand-in's query language and points, lazy imports."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from kibertas_async_datadog.check import parse_http_url, parse_site
from kibertas_async_datadog.standin import POINT_INTERVAL, ParsedQuery, parse_query, point_times, scope_matches


@pytest.mark.parametrize(
    ("text", "site"),
    [
        ("datadoghq.com", "datadoghq.com"),
        ("https://app.datadoghq.eu/", "datadoghq.eu"),
        ("ap1.datadoghq.com", "ap1.datadoghq.com"),
    ],
)
def test_site_accepts_sites_and_app_urls(text: str, site: str) -> None:
    assert parse_site(text) == site


@pytest.mark.parametrize("text", ["", "localhost", "datadoghq.com/api"])
def test_site_rejects_what_is_not_a_site(text: str) -> None:
    with pytest.raises(ValueError, match="not a Datadog site"):
        parse_site(text)


def test_api_url_must_be_http() -> None:
    assert parse_http_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert parse_http_url("") == ""
    with pytest.raises(ValueError, match="not an http"):
        parse_http_url("api.datadoghq.com")


def test_query_parts() -> None:
    assert parse_query("avg:kubernetes.cpu.user.total{kube_cluster_name:prod, env:x}") == ParsedQuery(
        "avg", "kubernetes.cpu.user.total", ("kube_cluster_name:prod", "env:x")
    )
    assert parse_query("system.load.1{*}") == ParsedQuery("avg", "system.load.1", ())
    with pytest.raises(ValueError, match="Error parsing query"):
        parse_query("avg:kubernetes.cpu.user.total")


def test_scope_must_name_this_cluster_when_it_names_one() -> None:
    assert scope_matches(parse_query("m{*}"), "sandbox-1")
    assert scope_matches(parse_query("m{kube_cluster_name:sandbox-1,env:x}"), "sandbox-1")
    assert not scope_matches(parse_query("m{kube_cluster_name:sandbox-2}"), "sandbox-1")


def test_points_start_with_the_agent_and_end_now() -> None:
    assert point_times(1000, 1100, agent_since=2000) == []
    assert point_times(1000, 1100, agent_since=1090) == [1100]
    times = point_times(1000, 1100, agent_since=0)
    assert times[-1] == 1100 and times[0] >= 1000
    assert all(b - a == POINT_INTERVAL for a, b in itertools.pairwise(times))


def test_listing_checks_does_not_import_the_datadog_client() -> None:
    code = (
        "import sys; from kibertas_async.cli import main; main(['list']); "
        "print('datadog_api_client' in sys.modules, 'aiosonic' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "datadog-agent" in output
    assert output.strip().endswith("False False")


@pytest.mark.anyio
async def test_in_cluster_without_a_datadog_cluster_name_fails_before_any_query() -> None:
    from kibertas_async.checks.cleanup import CleanupGuard, CleanupStack
    from kibertas_async.checks.context import CheckContext
    from kibertas_async.errors import CheckFailed
    from kibertas_async.events import get_logger
    from kibertas_async.kube import ClusterTarget
    from kibertas_async.options import OptionValues
    from kibertas_async_datadog.check import API_KEY, APP_KEY, QUERY, DatadogAgentCheck

    values = {option: option.default for option in DatadogAgentCheck.options}
    values.update({API_KEY: "key", APP_KEY: "key", QUERY: "avg:m{kube_cluster_name:{cluster}}"})
    ctx = CheckContext(
        run_id="run",
        check_name=DatadogAgentCheck.name,
        cluster=ClusterTarget(name="in-cluster", in_cluster=True),
        options=OptionValues(values, {}),
        log=get_logger(),
        cleanup=CleanupStack(keep=False, action_timeout=1.0, guard=CleanupGuard()),
        kube=None,
    )
    with pytest.raises(CheckFailed, match="set --datadog-cluster-name \\(DD_CLUSTER_NAME\\)"):
        await DatadogAgentCheck().run(ctx)
