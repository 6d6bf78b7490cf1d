"""The runtime distributions alone (the core and every plugin, no extras) install and work without the
sandbox's dependencies: what ``pip install kibertas-async-fluent`` and the Job image get.

A fresh virtualenv gets the distributions built from a copy of this checkout, with pip resolving their
declared dependencies (no ``--no-deps``) from a wheel cache only (``--no-index``). The cache is made once
per lock: ``pip wheel`` of ``constraints.txt`` (PyPI the first time) into
``~/.cache/kibertas-async/wheels/<hash of the lock>``. A dependency that the lock lacks fails the install.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "constraints.txt"
PLUGINS = sorted(path.parent for path in (ROOT / "plugins").glob("*/pyproject.toml"))
# moto's S3 server and the web framework it runs on: only the fluent plugin's ``sandbox`` extra needs them.
SANDBOX_ONLY = ("moto", "flask", "werkzeug")
# What `list` must not import besides the pytest plugin and the plugins' sandbox modules (the core's
# `sandbox` command group is imported: the CLI declares its subcommands).
UNWANTED_AT_LIST = (*SANDBOX_ONLY, "pytest", "boto3")
BUILT_IN_CHECKS = {"ingress", "cert-manager", "cluster-autoscaler", "karpenter", "datadog-agent", "fluent"}

pytestmark = pytest.mark.timeout(900)  # the first run downloads the lock's wheels


def wheel_cache() -> Path:
    """The lock's wheels, downloaded or built once per content of ``constraints.txt``."""
    key = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kibertas-async" / "wheels" / key
    if (cache / ".complete").exists():
        return cache
    partial = cache.with_name(f"{key}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(partial), "--requirement", str(LOCK))
    (partial / ".complete").touch()
    try:
        partial.rename(cache)
    except OSError:  # another run finished the same cache first
        shutil.rmtree(partial, ignore_errors=True)
    return cache


def pip(python: str | Path, *args: str) -> None:
    result = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "--quiet", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"pip {' '.join(args)}:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the runtime distributions only, built from a copy of the sources."""
    work = tmp_path_factory.mktemp("runtime")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "tests", ".*")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "kibertas_async", source / "kibertas_async", ignore=ignore)
    for plugin in PLUGINS:
        shutil.copytree(plugin, source / "plugins" / plugin.name, ignore=ignore)
    wheels = wheel_cache()
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    distributions = [str(source), *(str(source / "plugins" / plugin.name) for plugin in PLUGINS)]
    offline = ("--no-index", "--find-links", str(wheels), "--constraint", str(LOCK))
    pip(venv / "bin" / "python", "install", *offline, *distributions)
    return venv


def run(venv: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIBERTAS_ASYNC_")}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False, env=env, cwd=venv)


def test_version_and_list_work_without_the_sandbox_extras(runtime_venv: Path) -> None:
    version = run(runtime_venv, runtime_venv / "bin" / "kibertas-async", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("kibertas-async "), version.stdout

    listing = run(runtime_venv, runtime_venv / "bin" / "kibertas-async", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    listed = json.loads(listing.stdout)
    assert listed["plugin_problems"] == []
    assert {row["name"] for row in listed["checks"]} >= BUILT_IN_CHECKS


def test_sandbox_only_dependencies_are_not_installed(runtime_venv: Path) -> None:
    code = (
        "import importlib.util, json\n"
        f"print(json.dumps([m for m in {SANDBOX_ONLY!r} if importlib.util.find_spec(m) is not None]))\n"
    )
    result = run(runtime_venv, runtime_venv / "bin" / "python", "-c", code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_list_imports_no_sandbox_add_on_or_test_code(runtime_venv: Path) -> None:
    code = (
        "import json, sys\n"
        "from kibertas_async.cli import main\n"
        "try:\n    main(['list'])\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "def unwanted(name):\n"
        "    top, _, rest = name.partition('.')\n"
        f"    return top in {UNWANTED_AT_LIST!r} or name.startswith('kibertas_async.testing') or (\n"
        "        top.startswith('kibertas_async_') and rest.startswith(('sandbox', 'shipper', 'standin')))\n"
        "print(json.dumps(sorted(filter(unwanted, sys.modules))))\n"
    )
    result = run(runtime_venv, runtime_venv / "bin" / "python", "-c", code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_the_fluent_sandbox_add_on_names_its_extra_when_moto_is_missing(runtime_venv: Path) -> None:
    code = (
        "from kibertas_async.sandbox.errors import SandboxError\n"
        "from kibertas_async_fluent.plugin import kibertas_async_register_sandbox_addons\n"
        "[addon] = kibertas_async_register_sandbox_addons()\n"
        "try:\n    addon.prepare(print)\nexcept SandboxError as error:\n    print(error)\n"
    )
    result = run(runtime_venv, runtime_venv / "bin" / "python", "-c", code)
    assert result.returncode == 0, result.stderr
    assert "pip install 'kibertas-async-fluent[sandbox]'" in result.stdout
