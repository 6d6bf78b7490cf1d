"""Plugins are found through real installed entry points; a broken one is reported, the rest run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES
from tests.engine.conftest import ProcessEnv, cli


def test_list_shows_checks_from_installed_entry_points(process_env: ProcessEnv) -> None:
    result = cli("list", "--json", env=process_env(KIBERTAS_ASYNC_DISABLE_PLUGINS="broken"))
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    failing = next(row for row in listed["checks"] if row["name"] == "failing")
    options = [option["name"] for option in failing.pop("options")]
    assert options == ["synthetic-journal", "synthetic-delay", "synthetic-step-timeout", "synthetic-secret"]
    assert failing == {
        "name": "failing",
        "plugin": "synthetic",
        "distribution": "kibertas-async-synthetic",
        "version": "0.0.7",
        "tags": ["synthetic"],
        "description": "Creates a thing, then finds it broken (NG).",
        "permissions": [],
    }
    assert listed["plugin_problems"] == []


def test_a_broken_plugin_is_reported_by_name_and_the_others_still_run(process_env: ProcessEnv, tmp_path: Path) -> None:
    listing = cli("list", env=process_env())
    assert listing.returncode == 1
    assert "sleeper-1" in listing.stdout
    assert "plugin broken failed to load: ModuleNotFoundError: No module named" in listing.stderr
    assert "Traceback" not in listing.stderr

    report = tmp_path / "report.json"
    run = cli("run", "sleeper-1", "--report-json", str(report), "--log-format", "json", env=process_env())
    assert run.returncode == 1, "a plugin that failed to load must not let the run look green"
    data = json.loads(report.read_text())
    assert data["results"][0]["outcome"] == "passed"
    assert data["plugin_problems"][0]["plugin"] == "broken"
    assert any(
        json.loads(line).get("event") == "plugin.failed" for line in run.stderr.splitlines() if line.startswith("{")
    )
    assert "plugin broken failed to load" in run.stdout


def test_disabling_the_broken_plugin_by_name(process_env: ProcessEnv) -> None:
    by_env = cli("run", "sleeper-1", env=process_env(KIBERTAS_ASYNC_DISABLE_PLUGINS="broken"))
    assert by_env.returncode == 0, by_env.stderr
    by_flag = cli("run", "sleeper-1", "--disable-plugin", "broken", env=process_env())
    assert by_flag.returncode == 0, by_flag.stderr


def test_autoload_can_be_disabled(process_env: ProcessEnv) -> None:
    result = cli("list", "--json", env=process_env(KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"checks": [], "plugin_problems": []}


def test_a_misspelled_hook_fails_loudly(process_env: ProcessEnv) -> None:
    env = process_env(KIBERTAS_ASYNC_DISABLE_PLUGIN_AUTOLOAD="1")
    env["PYTHONPATH"] += ":" + str(FIXTURES / "plugins")
    result = cli("list", "--plugin", "misspelled_hook", env=env)
    assert result.returncode == 2
    assert "unknown hook" in result.stderr and "kibertas_async_register_chekcs" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_on_every_command_and_version(process_env: ProcessEnv) -> None:
    env = process_env(KIBERTAS_ASYNC_DISABLE_PLUGINS="broken")
    for args in (["--help"], ["run", "--help"], ["list", "--help"], ["cleanup", "--help"]):
        result = cli(*args, env=env)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.startswith("usage: kibertas-async")
    run_help = cli("run", "--help", env=env).stdout
    assert "--synthetic-delay" in run_help and "KIBERTAS_ASYNC_SYNTHETIC_DELAY" in run_help
    version = cli("--version", env=env)
    from importlib.metadata import version as installed_version

    assert version.stdout.strip() == f"kibertas-async {installed_version('kibertas-async')}"


def test_help_does_not_import_heavy_clients() -> None:
    code = (
        "import sys\n"
        "from kibertas_async.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('kubernetes_asyncio', 'aiohttp', 'structlog', 'aioboto3', 'anyio') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert re.fullmatch(r"\s*", result.stdout.splitlines()[-1]), result.stdout


def test_list_with_every_installed_plugin_imports_no_heavy_client() -> None:
    heavy = ("kubernetes_asyncio", "aiohttp", "aioboto3", "botocore", "dns", "datadog_api_client", "cryptography")
    code = (
        "import sys\n"
        "from kibertas_async.cli import main\n"
        "main(['list'])\n"
        f"print('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    marker = [line for line in result.stdout.splitlines() if line.startswith("HEAVY=")]
    assert marker == ["HEAVY="], result.stdout + result.stderr
