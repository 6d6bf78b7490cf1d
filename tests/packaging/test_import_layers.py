"""The layers a tool enforces: the import-linter contracts in ``.importlinter`` hold on this tree, and
they break when a plugin imports an internal module (a throwaway plugin package in a temporary
directory, linted with the project's contracts extended to it). Also: every module of kibertas_async
is either part of the public API or protected by the contract, so a new internal module cannot slip
past the plugins' rule unnoticed."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / ".importlinter"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PUBLIC_API_CONTRACT = "importlinter:contract:public-api"
PUBLIC_MODULES = {
    "kibertas_async",
    "kibertas_async.sandbox",
    "kibertas_async.sandbox.addons",
    "kibertas_async.sandbox.api",
    "kibertas_async.sandbox.build",
    "kibertas_async.sandbox.errors",
    "kibertas_async.sandbox.gobuild",
    "kibertas_async.sandbox.nodeagent",
    "kibertas_async.sandbox.processes",
}
"""What a plugin may import besides ``kibertas_async.testing`` (README, "Writing a plugin")."""


def _contracts() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(CONTRACTS, encoding="utf-8")
    return config


def _lint(config: configparser.ConfigParser, directory: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with ``config`` written into ``directory``, which is on the import path too."""
    path = directory / "contracts.ini"
    with path.open("w", encoding="utf-8") as file:
        config.write(file)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(directory), str(ROOT)])}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(path)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _with_plugin(tmp_path: Path, name: str, modules: dict[str, str]) -> configparser.ConfigParser:
    """The project's contracts with one more root package, ``name``, written from ``modules``."""
    package = tmp_path / name
    package.mkdir()
    for module, source in modules.items():
        (package / f"{module}.py").write_text(source, encoding="utf-8")
    config = _contracts()
    config["importlinter"]["root_packages"] += f"\n{name}"
    return config


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    contracts = [section for section in _contracts().sections() if section.startswith("importlinter:contract:")]
    assert len(contracts) >= 4  # layers, runtime, public-api, private
    result = _lint(_contracts(), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout


def test_a_plugin_that_imports_only_the_public_api_passes(tmp_path: Path) -> None:
    config = _with_plugin(
        tmp_path,
        "kibertas_async_throwaway",
        {
            "__init__": "",
            "check": "from kibertas_async import CONFIGMAPS, Check, hookimpl\n",
            # A plugin's own modules may import each other.
            "sandbox": (
                "from kibertas_async.sandbox.addons import AddonContext\nfrom kibertas_async_throwaway import check\n"
            ),
            "test_it": "from kibertas_async.testing import plugin\n",
        },
    )
    result = _lint(config, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("source", "internal"),
    [
        ("from kibertas_async.engine.runner import Engine\n", "kibertas_async.engine.runner"),
        ("from kibertas_async.kube.resources import CONFIGMAPS\n", "kibertas_async.kube.resources"),
        # A type-only import is a dependency too.
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from kibertas_async.results import Outcome\n",
            "kibertas_async.results",
        ),
        ("from kibertas_async.sandbox.runner import Sandbox\n", "kibertas_async.sandbox.runner"),
    ],
)
def test_a_plugin_that_imports_an_internal_module_breaks_the_contract(
    tmp_path: Path, source: str, internal: str
) -> None:
    config = _with_plugin(tmp_path, "kibertas_async_throwaway", {"__init__": "", "check": source})
    result = _lint(config, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    public_api = _contracts()[PUBLIC_API_CONTRACT]["name"]
    assert f"{public_api} BROKEN" in " ".join(result.stdout.split())
    assert f"kibertas_async_throwaway.check -> {internal}" in result.stdout
    assert "1 broken" in result.stdout


def test_a_plugin_that_imports_a_private_module_breaks_the_contract(tmp_path: Path) -> None:
    config = _with_plugin(
        tmp_path,
        "kibertas_async_throwaway",
        {"__init__": "", "check": "from kibertas_async._markers import hookimpl\n"},
    )
    result = _lint(config, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "kibertas_async_throwaway.check -> kibertas_async._markers" in result.stdout


def test_every_module_is_public_or_protected() -> None:
    protected = _contracts()[PUBLIC_API_CONTRACT]["protected_modules"].split()
    graph = grimp.build_graph("kibertas_async", cache_dir=None)

    def is_protected(module: str) -> bool:
        return any(module == name or module.startswith(name + ".") for name in protected)

    def is_private(module: str) -> bool:
        return any(part.startswith("_") and not part.startswith("__") for part in module.split("."))

    def is_public(module: str) -> bool:
        return (
            module in PUBLIC_MODULES
            or module == "kibertas_async.testing"
            or module.startswith("kibertas_async.testing.")
        )

    unaccounted = sorted(m for m in graph.modules if not (is_public(m) or is_protected(m) or is_private(m)))
    assert unaccounted == [], (
        "add these to the public-api contract's protected_modules in .importlinter (or make them public)"
    )
    both = sorted(m for m in graph.modules if is_public(m) and is_protected(m))
    assert both == []
    assert set(protected) <= set(graph.modules), "a protected module that does not exist"
