"""The README tells the truth: its commands exist, its plugin example is the tested code, every hook
is documented and tested."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kibertas_async import hookspecs
from kibertas_async.sandbox import hookspecs as sandbox_hookspecs
from kibertas_async.sandbox.runner import Sandbox
from tests.conftest import pip_install_copy

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "docs" / "example-plugin"
SPECS = {
    name: function
    for module in (hookspecs, sandbox_hookspecs)
    for name, function in inspect.getmembers(module, inspect.isfunction)
    if name.startswith("kibertas_async_")
}
"""Every hook: the contract's and the sandbox's own (kibertas_async.sandbox.hookspecs)."""
HOOKS = sorted(SPECS)


def _code_blocks(language: str) -> list[str]:
    return [block.strip() for block in re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)]


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, flags=re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).strip().splitlines()]
    assert commands == ["scripts/demo", "scripts/test"]
    for command in commands:
        assert os.access(ROOT / command, os.X_OK), command
    assert "exec scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_readme_plugin_example_is_the_tested_code() -> None:
    assert (EXAMPLE / "pyproject.toml").read_text().strip() in _code_blocks("toml")
    assert (EXAMPLE / "kibertas_async_configmap" / "__init__.py").read_text().strip() in _code_blocks("python")


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_in_the_readme(hook: str) -> None:
    assert f"`{hook}(" in README


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring_and_is_exercised_by_a_test(hook: str) -> None:
    assert (SPECS[hook].__doc__ or "").strip()
    sources = [
        path.read_text(encoding="utf-8")
        for folder in (ROOT / "tests", ROOT / "plugins")
        for path in folder.rglob("*.py")
        if path.resolve() != Path(__file__).resolve()
    ]
    assert any(hook in source for source in sources), f"no test or test plugin implements {hook}"


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("example-site")
    pip_install_copy(EXAMPLE, site, tmp_path_factory.mktemp("example-src"))
    return site


def _example_env(site: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIBERTAS_ASYNC_")}
    env["PYTHONPATH"] = str(site)
    env.update(extra)
    return env


def test_example_plugin_is_found_through_its_entry_point(example_site: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kibertas_async", "list", "--json"],
        env=_example_env(example_site),
        capture_output=True,
        text=True,
        check=False,
    )
    listed = {row["name"]: row for row in json.loads(result.stdout)["checks"]}
    assert listed["configmap-roundtrip"]["distribution"] == "kibertas-async-configmap"
    assert listed["configmap-roundtrip"]["version"] == "1.0.0"


def test_example_plugin_passes_on_two_sandbox_clusters_and_leaves_nothing(
    example_site: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kibertas_async",
            "run",
            "configmap-roundtrip",
            "--clusters",
            "sandbox-1,sandbox-2",
            "--kubeconfig",
            str(sandbox.kubeconfig),
            "--report-json",
            str(report),
            "--log-format",
            "json",
        ],
        env=_example_env(example_site, GREETING="hi from the README"),
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    data = json.loads(report.read_text())
    outcomes = {(r["cluster"], r["outcome"]) for r in data["results"] if r["check"] == "configmap-roundtrip"}
    assert outcomes == {("sandbox-1", "passed"), ("sandbox-2", "passed")}, result.stderr[-3000:]
    for r in data["results"]:
        assert [item["status"] for item in r["cleanup"]] == ["done", "done"]
        assert r["api_requests"] > 0
    from kibertas_async.testing import kubectl

    for cluster in ("sandbox-1", "sandbox-2"):
        left = kubectl(
            sandbox, cluster, "get", "namespaces", "-l", "app.kubernetes.io/managed-by=kibertas-async", "-o", "name"
        )
        assert left.stdout.strip() == ""


def test_the_example_plugin_ships_tests_that_pass_where_it_is_installed(
    example_site: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """As its author would: the distribution installed, then ``pytest`` in its directory. The tests use the
    kit kibertas-async installs (``check_runner``, ``nothing_left``, the ``sandbox`` fixture)."""
    import shutil

    checkout = tmp_path_factory.mktemp("example-checkout") / "example-plugin"
    shutil.copytree(EXAMPLE, checkout)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=checkout,
        env=_example_env(example_site),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout, result.stdout[-2000:]


def test_the_engine_options_line_gives_their_real_defaults() -> None:
    """README's "Engine options" line: the concurrency defaults it names are the options' own."""
    from kibertas_async.engine import settings

    for option in (settings.CONCURRENCY, settings.CLUSTER_CONCURRENCY):
        assert f"`--{option.name} N` ({option.default})" in README, option.name
