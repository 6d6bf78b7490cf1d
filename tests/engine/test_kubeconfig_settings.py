"""A kubeconfig context can name its option values (extension ``kibertas-async.io/settings``, which
``sandbox up`` writes): ``run`` applies them under the flag, the environment and ``--config``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import CliResult, RunCli


def _kubeconfig(directory: Path, extensions: dict[str, object]) -> Path:
    """Contexts ``alpha`` and ``beta``; ``extensions`` maps a context to its settings extension's value."""

    def context(name: str) -> dict[str, object]:
        entry: dict[str, object] = {"cluster": name, "user": "nobody"}
        if name in extensions:
            entry["extensions"] = [{"name": "kibertas-async.io/settings", "extension": extensions[name]}]
        return {"name": name, "context": entry}

    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "alpha",
        "clusters": [
            {"name": "alpha", "cluster": {"server": "https://127.0.0.1:1"}},
            {"name": "beta", "cluster": {"server": "https://127.0.0.1:2"}},
        ],
        "contexts": [context("alpha"), context("beta")],
        "users": [{"name": "nobody", "user": {"token": "not-a-real-token"}}],
    }
    path = directory / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _settings_file(path: Path) -> Path:
    # sandbox-like: per-cluster values, and one of a plugin this run does not load.
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": {
                    "alpha": {"synthetic-delay": "7s", "ingress-hostname": "x.alpha.sandbox.test"},
                    "beta": {"synthetic-delay": "8s"},
                }
            }
        ),
        encoding="utf-8",
    )
    return path


def _delay(out: str, cluster: str) -> str:
    """``7 (config file clusters.alpha)``: the seconds and the source --dry-run shows for the cluster."""
    block = out.split(f"cluster {cluster} ")[1]
    line = next(line.strip() for line in block.splitlines() if line.strip().startswith("synthetic-delay ="))
    value, _, source = line.removeprefix("synthetic-delay = ").partition("  ")
    seconds = value.removesuffix("s").removesuffix(".0")
    return f"{seconds} {source}"


@pytest.fixture
def with_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig (as ``KUBECONFIG``) whose two contexts name one settings file by absolute path."""
    settings = _settings_file(tmp_path / "kibertas-async.yaml")
    path = _kubeconfig(
        tmp_path,
        {"alpha": {"config": str(settings), "cluster": "alpha"}, "beta": {"config": str(settings), "cluster": "beta"}},
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    return settings


DRY_RUN = ("run", "sleeper-1", "--clusters", "alpha,beta", "--dry-run")


def test_a_context_s_settings_apply_without_config(run_cli: RunCli, with_settings: Path) -> None:
    result = run_cli(*DRY_RUN)
    assert result.code == 0, result.err
    assert _delay(result.out, "alpha") == "7 (config file clusters.alpha)"
    assert _delay(result.out, "beta") == "8 (config file clusters.beta)"
    assert f"note: cluster 'alpha' takes settings from {with_settings} (kubeconfig context alpha" in result.out


def test_the_section_follows_the_context_not_the_report_name(run_cli: RunCli, with_settings: Path) -> None:
    result = run_cli("run", "sleeper-1", "--clusters", "old=alpha,new=beta", "--dry-run")
    assert result.code == 0, result.err
    assert _delay(result.out, "old").startswith("7 ")
    assert _delay(result.out, "new").startswith("8 ")


def test_explicit_config_flag_and_environment_win(
    run_cli: RunCli, with_settings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text("defaults:\n  synthetic-delay: 2s\nclusters:\n  beta:\n    synthetic-delay: 3s\n")
    result = run_cli(*DRY_RUN, "--config", str(config))
    assert result.code == 0, result.err
    # --config's defaults hide the context's per-cluster value too: an explicit file wins as a whole key.
    assert _delay(result.out, "alpha") == "2 (config file defaults)"
    assert _delay(result.out, "beta") == "3 (config file clusters.beta)"

    config.write_text("clusters:\n  beta:\n    synthetic-delay: 3s\n")
    result = run_cli(*DRY_RUN, "--config", str(config))
    assert _delay(result.out, "alpha") == "7 (config file clusters.alpha)"
    assert _delay(result.out, "beta") == "3 (config file clusters.beta)"

    monkeypatch.setenv("KIBERTAS_ASYNC_SYNTHETIC_DELAY", "4s")
    assert _delay(run_cli(*DRY_RUN).out, "alpha").startswith("4 (environment variable")
    assert _delay(run_cli(*DRY_RUN, "--synthetic-delay", "5s").out, "beta").startswith("5 (flag")


def test_ignore_kubeconfig_settings(run_cli: RunCli, with_settings: Path) -> None:
    result = run_cli(*DRY_RUN, "--ignore-kubeconfig-settings")
    assert result.code == 0, result.err
    assert _delay(result.out, "alpha").endswith("(default)")
    assert "takes settings from" not in result.out


def test_a_relative_path_is_relative_to_the_kubeconfig(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    _settings_file(tmp_path / "conf" / "settings.yaml")
    kubeconfig = _kubeconfig(tmp_path, {"alpha": {"config": "conf/settings.yaml"}})
    monkeypatch.chdir("/")
    result = run_cli(*DRY_RUN, "--kubeconfig", str(kubeconfig))
    assert result.code == 0, result.err
    assert _delay(result.out, "alpha").startswith("7 ")  # section: the context's name
    assert _delay(result.out, "beta").endswith("(default)")


def _usage_error(result: CliResult) -> str:
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return lines[0]


def test_a_missing_settings_file_is_one_line_and_exit_2(
    run_cli: RunCli, with_settings: Path, journal_path: Path
) -> None:
    with_settings.unlink()
    line = _usage_error(run_cli("run", "sleeper-1", "--clusters", "alpha,beta"))
    assert line.startswith("kibertas-async: error: kubeconfig context alpha (extension kibertas-async.io/settings in ")
    assert f"cannot read config file {with_settings}: No such file or directory" in line
    assert "--ignore-kubeconfig-settings" in line
    assert not journal_path.exists()  # nothing ran
    assert run_cli(*DRY_RUN, "--ignore-kubeconfig-settings").code == 0


def test_an_unreadable_or_invalid_settings_file_is_one_line_and_exit_2(run_cli: RunCli, with_settings: Path) -> None:
    with_settings.unlink()
    with_settings.mkdir()  # unreadable as a file, even for root (who reads any file whatever its mode)
    assert f"cannot read config file {with_settings}: Is a directory" in _usage_error(run_cli(*DRY_RUN))
    with_settings.rmdir()
    with_settings.write_text("clusters: [not, a, mapping]\n")
    line = _usage_error(run_cli(*DRY_RUN))
    assert f"config file {with_settings}: 'clusters' must map each cluster name to option values" in line
    with_settings.write_text("clusters:\n  alpha:\n    synthetic-delay: soon\n")
    line = _usage_error(run_cli(*DRY_RUN))
    assert "invalid value 'soon' for --synthetic-delay" in line
    assert "applied by kubeconfig context alpha" in line
    with_settings.write_text("clusters:\n  gamma: {}\n")
    assert f"settings file {with_settings} has no clusters.alpha" in _usage_error(run_cli(*DRY_RUN))


@pytest.mark.parametrize("extension", [None, "a string", {"cluster": "alpha"}, {"config": ""}, {"config": 3}])
def test_a_malformed_extension_is_one_line_and_exit_2(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extension: object
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path, {"alpha": extension})))
    line = _usage_error(run_cli(*DRY_RUN))
    assert "context 'alpha' has a kibertas-async.io/settings extension without a 'config' path" in line
    assert run_cli(*DRY_RUN, "--ignore-kubeconfig-settings").code == 0
