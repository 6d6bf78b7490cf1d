"""Bad input: one line naming the problem, exit code 2, no traceback, and nothing run or created."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunCli


def _assert_usage_error(result: object, expected: str) -> None:
    code, err, journal = result.code, result.err, result.journal  # type: ignore[attr-defined]
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kibertas-async: error: ")
    assert expected in lines[0]
    assert "Traceback" not in err
    assert journal == [], "a check ran despite bad input"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no-such-check"], "unknown check 'no-such-check'"),
        (["run", "sleeper1"], "did you mean 'sleeper-1'?"),
        (["run", "sleeper-1", "--exclude", "nope"], "unknown check 'nope'"),
        (["run"], "name the checks to run, or use --all or --tags"),
        (["run", "--all", "sleeper-1"], "give check names or --all, not both"),
        (["run", "--tags", "no-such-tag"], "no check has any of the tags no-such-tag"),
        (["run", "sleeper-1", "--exclude", "sleeper-1"], "nothing left to run"),
        (["run", "sleeper-1", "--clusters", "gamma"], "unknown context 'gamma'"),
        (["run", "sleeper-1", "--clusters", "alpha,alpha"], "cluster 'alpha' is given twice"),
        (["run", "sleeper-1", "--clusters", "x="], "is empty; use NAME or NAME=CONTEXT"),
        (["run", "sleeper-1", "--clusters", "in-cluster"], "only works inside a Kubernetes Pod"),
        (["run", "sleeper-1", "--concurrency", "0"], "invalid value '0' for --concurrency (from flag --concurrency)"),
        (["run", "sleeper-1", "--check-timeout", "soon"], "is not a duration"),
        (["run", "sleeper-1", "--run-id", "Bad ID"], "must be a valid label value"),
        (["run", "sleeper-1", "--report-json", "/no/such/dir/r.json"], "directory /no/such/dir does not exist"),
        (["run", "sleeper-1", "--log-level", "loud"], "invalid choice: 'loud'"),
        (["run", "sleeper-1", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_command_line(run_cli: RunCli, args: list[str], expected: str) -> None:
    _assert_usage_error(run_cli(*args), expected)


def test_missing_kubeconfig(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "sleeper-1", "--kubeconfig", str(tmp_path / "missing.yaml"))
    _assert_usage_error(result, "missing.yaml does not exist")


def test_kubeconfig_that_is_not_yaml(run_cli: RunCli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("contexts: [unclosed\n")
    _assert_usage_error(run_cli("run", "sleeper-1", "--kubeconfig", str(broken)), "is not valid YAML")


def test_kubeconfig_without_current_context(run_cli: RunCli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    _assert_usage_error(run_cli("run", "sleeper-1", "--kubeconfig", str(empty)), "has no current context")


def test_unreadable_kubeconfig(run_cli: RunCli, tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    _assert_usage_error(run_cli("run", "sleeper-1", "--kubeconfig", str(directory)), "cannot read kubeconfig")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("defaults: [1, 2\n", "is not valid YAML at line"),
        ("- just\n- a list\n", "must be a mapping"),
        ("clusters: {}\nextra: 1\n", "unknown top-level key 'extra'"),
        (
            "defaults: {synthetic-dealy: 1s}\n",
            "unknown option 'synthetic-dealy' under defaults (did you mean 'synthetic-delay'?)",
        ),
        ("clusters: {alpha: {concurrency: 2}}\n", "'concurrency' applies to the whole run; set it under defaults"),
        ("clusters: {alpha: {synthetic-delay: never}}\n", "for --synthetic-delay (from config file clusters.alpha)"),
        ("defaults: 5\n", "'defaults' must be a mapping"),
    ],
)
def test_bad_config_file(run_cli: RunCli, tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(content)
    _assert_usage_error(run_cli("run", "sleeper-1", "--config", str(config)), expected)


def test_missing_config_file(run_cli: RunCli, tmp_path: Path) -> None:
    _assert_usage_error(run_cli("run", "sleeper-1", "--config", str(tmp_path / "nope.yaml")), "cannot read config file")


def test_invalid_environment_value(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBERTAS_ASYNC_CLUSTER_CONCURRENCY", "many")
    _assert_usage_error(
        run_cli("run", "sleeper-1"),
        "for --cluster-concurrency (from environment variable KIBERTAS_ASYNC_CLUSTER_CONCURRENCY)",
    )


def test_secret_value_is_not_echoed_in_an_error(run_cli: RunCli, tmp_path: Path) -> None:
    # A secret option that fails to parse must not print the secret; the synthetic secret accepts any
    # text, so use the config-file path with a structure that still parses to text: nothing to echo.
    result = run_cli("run", "sleeper-1", "--synthetic-secret", "abcd1234", "--concurrency", "0")
    assert "abcd1234" not in result.err
