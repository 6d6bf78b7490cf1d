"""Options: flag > environment > config clusters.<name> > config defaults > default, shown by --dry-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunCli


def _delay_line(out: str, cluster: str) -> str:
    block = out.split(f"cluster {cluster} ")[1]
    return next(line.strip() for line in block.splitlines() if line.strip().startswith("synthetic-delay ="))


def test_precedence(run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("defaults:\n  synthetic-delay: 2s\nclusters:\n  beta:\n    synthetic-delay: 3s\n")
    base = ["run", "sleeper-1", "--clusters", "alpha,beta", "--config", str(config), "--dry-run"]

    result = run_cli(*base)
    assert result.code == 0
    assert _delay_line(result.out, "alpha") == "synthetic-delay = 2s  (config file defaults)"
    assert _delay_line(result.out, "beta") == "synthetic-delay = 3s  (config file clusters.beta)"

    monkeypatch.setenv("KIBERTAS_ASYNC_SYNTHETIC_DELAY", "4s")
    result = run_cli(*base)
    assert (
        _delay_line(result.out, "beta") == "synthetic-delay = 4s  (environment variable KIBERTAS_ASYNC_SYNTHETIC_DELAY)"
    )

    result = run_cli(*base, "--synthetic-delay", "5s")
    assert _delay_line(result.out, "alpha") == "synthetic-delay = 5s  (flag --synthetic-delay)"
    assert _delay_line(result.out, "beta") == "synthetic-delay = 5s  (flag --synthetic-delay)"


def test_dry_run_prints_the_matrix_touches_nothing_and_masks_secrets(run_cli: RunCli) -> None:
    result = run_cli(
        "run", "sleeper-1", "failing", "--clusters", "old=alpha,new=beta", "--dry-run", "--synthetic-secret", "hunter22"
    )
    assert result.code == 0
    assert result.journal == []
    assert "2 check(s) x 2 cluster(s); nothing is created" in result.out
    assert "cluster old (context alpha)" in result.out
    assert "cluster new (context beta)" in result.out
    assert "creates  nothing (synthetic)" in result.out
    assert "synthetic-secret = <set>" in result.out
    assert "hunter22" not in result.out


def test_tags_and_exclude_select_checks(run_cli: RunCli) -> None:
    result = run_cli("run", "--tags", "exclusive", "--dry-run")
    assert result.code == 0
    assert "  exclusive-a  " in result.out and "  exclusive-b  " in result.out
    assert "sleeper-1" not in result.out
    result = run_cli("run", "--all", "--exclude", "forever,kube-forever,slow-cleanup,hanging", "--dry-run")
    assert "forever" not in result.out and "sleeper-6" in result.out


def test_boolean_options_have_a_negative_flag(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBERTAS_ASYNC_SUMMARY", "false")
    assert run_cli("run", "sleeper-1").out == ""
    assert "OK" in run_cli("run", "sleeper-1", "--summary").out
    monkeypatch.delenv("KIBERTAS_ASYNC_SUMMARY")
    assert run_cli("run", "sleeper-1", "--no-summary").out == ""
