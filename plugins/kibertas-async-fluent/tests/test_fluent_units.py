"""The parts that need no cluster: declared log lines, marker search, path templates, the shipper's records."""

from __future__ import annotations

import gzip
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from kibertas_async_fluent.check import DEFAULT_LOG_PATH, parse_log_path, render_log_path
from kibertas_async_fluent.declared import declared_lines
from kibertas_async_fluent.s3 import contains_marker
from kibertas_async_fluent.shipper import records_by_namespace, shipper_nodes

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("container", "lines"),
    [
        ({"command": ["echo", "hello", "world"]}, ["hello world"]),
        (
            {"command": ["/bin/echo"], "args": ["-n", "$(WHO) here"], "env": [{"name": "WHO", "value": "me"}]},
            ["me here"],
        ),
        (
            {
                "command": ["/bin/sh", "-c"],
                "args": [
                    'while true; do echo "$M burst from $HOSTNAME"; head -c 9 /dev/urandom | base64; sleep 2; done'
                ],
                "env": [{"name": "M", "value": "marker-1"}, {"name": "HOSTNAME", "value": "pod-a"}],
            },
            ["marker-1 burst from pod-a"],
        ),
        (
            {
                "command": ["bash", "-c", 'echo one && echo ${X}; echo "$(date)"'],
                "env": [{"name": "X", "value": "two"}],
            },
            ["one", "two", "$(date)"],
        ),
        ({"command": ["sh", "-c", "printf 'not an echo\\n'; sleep 1"]}, []),
        ({"command": ["nginx", "-g", "daemon off;"]}, []),
        ({"image": "nginx"}, []),
        ({"command": ["sh", "-c", "echo 'unbalanced"]}, []),
    ],
)
def test_declared_lines(container: dict[str, Any], lines: list[str]) -> None:
    assert declared_lines(container) == lines


def test_kubernetes_escape_keeps_the_reference_literal() -> None:
    assert declared_lines({"command": ["echo", "$$(X)"], "env": [{"name": "X", "value": "y"}]}) == ["$(X)"]


def test_marker_is_found_in_gzip_and_plain_objects() -> None:
    assert contains_marker(gzip.compress(b'{"log": "a marker-42 b"}\n'), "marker-42")
    assert contains_marker(b"plain marker-42 text", "marker-42")
    assert not contains_marker(gzip.compress(b"other"), "marker-42")
    assert not contains_marker(b"\x1f\x8b broken gzip", "marker-42")


def test_log_path_template() -> None:
    assert render_log_path(DEFAULT_LOG_PATH, env="test", namespace="ns", date=NOW) == "fluentd/test/ns/dt=20261126"
    assert parse_log_path("/logs/{namespace}/{date:%Y/%m/%d}") == "logs/{namespace}/{date:%Y/%m/%d}"
    with pytest.raises(ValueError, match="not a path template"):
        parse_log_path("fluentd/{cluster}/{namespace}")


def _pod(name: str, namespace: str, node: str, command: list[str], owner: str | None = None) -> dict[str, Any]:
    owners = [{"kind": "DaemonSet", "name": owner}] if owner else []
    return {
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": owners},
        "spec": {"nodeName": node, "containers": [{"name": "c", "command": command}]},
    }


def test_shipper_ships_only_pods_on_nodes_with_fluentd() -> None:
    pods = [
        _pod("fluentd-a", "logging", "node-1", ["fluentd"], owner="fluentd"),
        _pod("app-1", "apps", "node-1", ["sh", "-c", "echo on node one from $HOSTNAME"]),
        _pod("app-2", "apps", "node-2", ["echo", "on node two"]),
    ]
    nodes = shipper_nodes(pods)
    assert nodes == {"node-1"}
    records = records_by_namespace(pods, nodes, NOW)
    assert list(records) == ["apps"]
    (record,) = records["apps"]
    assert record["log"] == "on node one from app-1\n"
    assert record["kubernetes"] == {
        "namespace_name": "apps",
        "pod_name": "app-1",
        "container_name": "c",
        "host": "node-1",
        "labels": {},
    }


def test_listing_checks_does_not_import_aioboto3() -> None:
    code = (
        "import sys; from kibertas_async.cli import main; main(['list']); "
        "print('aioboto3' in sys.modules, 'botocore' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "fluent" in output
    assert output.strip().endswith("False False")
