"""``list --json`` describes every check and its options (never a secret's value); ``run --dry-run`` needs
no kubeconfig, names the clusters a real run would need and shows the matrix, objects and options;
durations are printed as durations (``1h``, ``2m``) in ``run --help``, ``--dry-run`` and ``list --json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunCli


@pytest.fixture
def no_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """``KUBECONFIG`` naming a file that does not exist, and an empty ``HOME``; the home is returned."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nowhere" / "kubeconfig"))
    return home


def _checks(run_cli: RunCli) -> dict[str, dict[str, Any]]:
    result = run_cli("list", "--json")
    assert result.code == 0, result.err
    document = json.loads(result.out)
    return {check["name"]: check for check in document["checks"]}


def test_list_json_has_each_checks_plugin_version_tags_permissions_and_options(run_cli: RunCli) -> None:
    checks = _checks(run_cli)
    sleeper = checks["sleeper-1"]
    assert {"name", "plugin", "version", "tags", "permissions", "options"} <= set(sleeper)
    assert sleeper["tags"] == ["synthetic"]
    assert sleeper["plugin"] == "kibertas_async_synthetic"
    assert isinstance(sleeper["version"], str), "a --plugin module has no distribution, so no version"
    options = {option["name"]: option for option in sleeper["options"]}
    assert options["synthetic-delay"] == {
        "name": "synthetic-delay",
        "flag": "--synthetic-delay",
        "env": ["KIBERTAS_ASYNC_SYNTHETIC_DELAY"],
        "default": "0.05s",
        "secret": False,
        "per_cluster": True,
        "help": "How long each sleeper sleeps.",
    }
    assert options["synthetic-step-timeout"]["default"] == "0.3s"
    assert options["synthetic-journal"]["default"] is None
    secret = options["synthetic-secret"]
    assert (secret["secret"], secret["default"]) == (True, None)
    assert all(isinstance(check["permissions"], list) and "options" in check for check in checks.values())


def test_list_json_never_shows_a_secrets_value(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBERTAS_ASYNC_SYNTHETIC_SECRET", "hunter22-list")
    result = run_cli("list", "--json")
    assert result.code == 0
    assert "hunter22-list" not in result.out + result.err


def test_dry_run_without_kubeconfig_names_the_clusters_it_needs(run_cli: RunCli, no_kubeconfig: Path) -> None:
    result = run_cli(
        "run", "sleeper-1", "failing", "--clusters", "old,new=arn:aws:eks:region:1:cluster/blue", "--dry-run"
    )
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    lines = result.out.splitlines()
    assert lines[0].endswith("2 check(s) x 2 cluster(s); nothing is created")
    assert (
        "a real run needs it, with context old (cluster old), context arn:aws:eks:region:1:cluster/blue (cluster new)"
        in lines[1]
    )
    assert "cluster old (context old)" in lines
    assert "cluster new (context arn:aws:eks:region:1:cluster/blue)" in lines
    block = result.out.split("cluster new ")[1]
    assert "  failing  [" in block and "      creates  nothing (synthetic)" in block
    assert "      synthetic-delay = 0.05s  (default)" in block
    assert "      run-timeout = 1h  (default)" in result.out.split("\nrun options\n")[1]
    assert result.journal == [], "nothing ran"


def test_dry_run_without_kubeconfig_or_clusters_names_the_current_context(
    run_cli: RunCli, no_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG")
    result = run_cli("run", "sleeper-1", "--dry-run")
    assert result.code == 0, result.err
    default = no_kubeconfig / ".kube" / "config"
    assert f"note: kubeconfig {default} does not exist" in result.out
    assert "a real run needs it, with a current context" in result.out
    assert f"cluster current-context (the current context of {default})" in result.out.splitlines()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--clusters", "a,,b"], "--clusters 'a,,b' has an empty entry"),
        (["--clusters", "a,a"], "cluster 'a' is given twice in --clusters"),
        (["--clusters", "x="], "--clusters entry 'x=' is empty"),
        (["--clusters", "in-cluster"], "--clusters in-cluster only works inside a Kubernetes Pod"),
        (["--check-timeout", "soon"], "is not a duration"),
    ],
)
def test_dry_run_without_kubeconfig_still_refuses_bad_input(
    run_cli: RunCli, no_kubeconfig: Path, args: list[str], expected: str
) -> None:
    result = run_cli("run", "sleeper-1", "--dry-run", *args)
    assert result.code == 2, result.err
    [line] = result.err.strip().splitlines()
    assert line.startswith("kibertas-async: error: ") and expected in line
    assert "Traceback" not in result.err


def test_dry_run_with_a_kubeconfig_still_checks_the_contexts(run_cli: RunCli) -> None:
    result = run_cli("run", "sleeper-1", "--dry-run", "--clusters", "gamma")
    assert result.code == 2
    assert "unknown context 'gamma'" in result.err
    passing = run_cli("run", "sleeper-1", "--dry-run", "--clusters", "alpha")
    assert passing.code == 0 and "does not exist" not in passing.out


def test_run_help_shows_duration_defaults_as_durations(run_cli: RunCli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli("run", "--help")
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag, default in (("run-timeout", "1h"), ("cleanup-timeout", "2m"), ("connect-timeout", "15s")):
        assert f"KIBERTAS_ASYNC_{flag.upper().replace('-', '_')}] (default: {default})" in text
    assert "(default: 3600.0)" not in text and "(default: 120.0)" not in text
