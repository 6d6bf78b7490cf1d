"""``kibertas-async new-check NAME``: the plugin it writes is the README's example with the new names, it
installs, ``list`` shows its check, and its own tests pass on the sandbox; bad input writes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kibertas_async.cli import main
from kibertas_async.newcheck import EXAMPLE, MAX_NAME_LENGTH, PluginNames, render
from tests.conftest import pip_install_copy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = ROOT / "docs" / "example-plugin"
NOT_RENDERED = {"waiting.md"}
"""Files of docs/example-plugin that are documentation of the repository, not part of the template."""
RUFF = Path(sys.executable).parent / "ruff"


def _files(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` (what a test run or a build leaves beside them excluded)."""
    return {
        str(path.relative_to(directory)): path.read_text(encoding="utf-8")
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not {"__pycache__", "build", ".pytest_cache"} & set(path.parts)
        if ".egg-info" not in str(path)
    }


def test_the_example_plugin_is_the_template_rendered_with_its_names() -> None:
    """One source: the template. The example (the README's plugin, installed and tested by tests/docs) is
    its rendering: edit the template, then write each ``(path, text)`` of ``render(EXAMPLE).items()`` to
    ``docs/example-plugin/<path>``."""
    example = {path: text for path, text in _files(EXAMPLE_DIR).items() if path not in NOT_RENDERED}
    rendered = render(EXAMPLE)
    assert sorted(example) == sorted(rendered)
    for path, text in rendered.items():
        assert example[path] == text, f"docs/example-plugin/{path} differs from the template's rendering"


def test_names_for_a_new_check() -> None:
    names = PluginNames.for_check("my-addon")
    assert (names.distribution, names.module, names.entry_point) == (
        "kibertas-async-my-addon",
        "kibertas_async_my_addon",
        "my-addon",
    )
    assert (names.option, names.env, names.main_env) == (
        "my-addon-greeting",
        "MY_ADDON_GREETING",
        "KIBERTAS_ASYNC_MY_ADDON_GREETING",
    )
    assert names.class_name == "MyAddon"
    files = render(names)
    assert sorted(files) == [
        "README.md",
        "kibertas_async_my_addon/__init__.py",
        "pyproject.toml",
        "tests/test_my_addon.py",
    ]
    assert 'my-addon = "kibertas_async_my_addon"' in files["pyproject.toml"]
    assert "configmap-roundtrip" not in "".join(files.values())


def test_the_rendering_imports_only_the_public_api() -> None:
    """What a plugin may import (README, "What a plugin may import"): the flat namespace, and in tests
    the testing kit; the new plugin is the first thing an author copies from."""
    import ast

    names = PluginNames.for_check("my-addon")
    for path, text in render(names).items():
        if not path.endswith(".py"):
            continue
        imported = {
            node.module
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.ImportFrom) and node.module is not None
        } | {alias.name for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Import) for alias in node.names}
        allowed_kit = path.startswith("tests/")
        for module in imported - {"__future__", names.module}:
            public = module == "kibertas_async" or (
                allowed_kit and (module == "kibertas_async.testing" or module.startswith("kibertas_async.testing."))
            )
            assert public, f"{path} imports {module}, which is not kibertas-async's public API"


def test_the_rendering_passes_the_projects_ruff_rules_with_the_longest_name(tmp_path: Path) -> None:
    name = "abcdefghi-abcdefghi-abcdefghij"
    assert len(name) == MAX_NAME_LENGTH
    assert main(["new-check", name, "--directory", str(tmp_path / "plugin")]) == 0
    config = ["--config", str(ROOT / "pyproject.toml")]
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [str(RUFF), *command, *config, str(tmp_path / "plugin")], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("My_Addon", "is not a check name"),
        ("1addon", "is not a check name"),
        ("my--addon", "is not a check name"),
        ("my-addon-", "is not a check name"),
        ("my.addon", "is not a check name"),
        ("a" * (MAX_NAME_LENGTH + 1), f"a check name has at most {MAX_NAME_LENGTH}"),
        ("kibertas-async-x", "starts with 'kibertas-async'"),
        ("ingress", "kibertas-async-ingress is installed already"),
    ],
)
def test_a_bad_name_is_one_line_exit_2_and_nothing_written(
    name: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["new-check", name]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("kibertas-async: error: "), captured.err
    assert says in captured.err
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_holds_something_is_refused_and_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    a_file = tmp_path / "a-file"
    a_file.write_text("mine too")

    assert main(["new-check", "my-addon", "--directory", str(taken)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert main(["new-check", "my-addon", "--directory", str(a_file)]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err
    assert [path.name for path in taken.iterdir()] == ["notes.txt"]
    assert a_file.read_text() == "mine too"


def test_an_empty_directory_is_used_and_the_default_is_named_after_the_distribution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["new-check", "my-addon", "--directory", str(empty)]) == 0
    assert _files(empty) == render(PluginNames.for_check("my-addon"))
    capsys.readouterr()

    monkeypatch.chdir(tmp_path)
    assert main(["new-check", "other-addon"]) == 0
    out = capsys.readouterr().out
    assert _files(tmp_path / "kibertas-async-other-addon") == render(PluginNames.for_check("other-addon"))
    assert "next: pip install -e kibertas-async-other-addon" in out


def test_help_says_what_is_written_the_name_rules_and_what_next(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["new-check", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for expected in (
        "kibertas-async new-check [-h] [--directory DIR] NAME",
        "entry point",
        "check_runner and nothing_left",
        f"at most {MAX_NAME_LENGTH} characters",
        "default ./kibertas-async-NAME",
        "pip install -e DIR",
        "pytest DIR/tests",
        "exit codes: 0 written, 2 bad input",
    ):
        assert expected in text, expected


def test_the_template_ships_in_the_wheel(tmp_path: Path) -> None:
    """What ``pip install kibertas-async`` gets holds the template, not only this checkout."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "kibertas_async", source / "kibertas_async", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("kibertas_async-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    template = ROOT / "kibertas_async" / "newcheck" / "template"
    expected = {f"kibertas_async/newcheck/template/{p.relative_to(template)}" for p in template.rglob("*.tmpl")}
    assert len(expected) == 4
    assert expected <= shipped


def _plugin_env(site: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIBERTAS_ASYNC_")}
    env["PYTHONPATH"] = str(site)
    return env


@pytest.fixture(scope="module")
def new_plugin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``kibertas-async new-check my-addon`` written to a fresh directory and pip-installed (``--no-deps
    --target``, as tests/docs installs the example): (its directory, the site it is installed in)."""
    plugin = tmp_path_factory.mktemp("new-check") / "kibertas-async-my-addon"
    assert main(["new-check", "my-addon", "--directory", str(plugin)]) == 0
    site = tmp_path_factory.mktemp("new-check-site")
    pip_install_copy(plugin, site, tmp_path_factory.mktemp("new-check-build"))
    return plugin, site


def test_a_new_check_once_installed_is_listed_with_its_plugin_and_option(new_plugin: tuple[Path, Path]) -> None:
    _, site = new_plugin
    listed = subprocess.run(
        [sys.executable, "-m", "kibertas_async", "list", "--json"],
        env=_plugin_env(site),
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    checks = {row["name"]: row for row in json.loads(listed.stdout)["checks"]}
    row = checks["my-addon"]
    assert (row["distribution"], row["version"], row["plugin"]) == ("kibertas-async-my-addon", "1.0.0", "my-addon")
    assert [(option["name"], option["env"]) for option in row["options"]] == [
        ("my-addon-greeting", ["KIBERTAS_ASYNC_MY_ADDON_GREETING", "MY_ADDON_GREETING"])
    ]


def test_a_new_check_passes_its_own_tests_on_the_sandbox(new_plugin: tuple[Path, Path]) -> None:
    """As its author would: ``pytest tests`` in its directory, with it installed. Its tests start the
    sandbox themselves (one start, in that pytest process): this test uses none."""
    from kibertas_async.sandbox.build import binaries_for
    from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION
    from kibertas_async.testing import ci_requires_sandbox

    if binaries_for(DEFAULT_KUBERNETES_VERSION).missing() and not ci_requires_sandbox():
        pytest.skip("sandbox binaries missing; build them with `kibertas-async sandbox build`")
    plugin, site = new_plugin
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=plugin,
        env=_plugin_env(site),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert "2 passed" in tested.stdout, tested.stdout[-2000:]
