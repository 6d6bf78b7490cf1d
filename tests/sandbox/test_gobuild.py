"""``go_command`` with a stand-in ``go``: the plain form add-ons use as is, and a wrapper module with Go
sources of our own (cert-manager's controllers under our ``main``) and extra ``replace`` lines."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from kibertas_async.sandbox.gobuild import go_command, go_command_path
from tests.sandbox.test_build import FAKE_GO

MAIN_GO = 'package main\n\nimport _ "example.com/tool/pkg/lib"\n\nfunc main() {}\n'


@pytest.fixture
def go_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``go`` on PATH that records its arguments and fakes builds; returns the file it records to."""
    tool_dir = tmp_path / "go-bin"
    tool_dir.mkdir()
    go = tool_dir / "go"
    go.write_text(FAKE_GO.format(python=sys.executable))
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "go-calls.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{tool_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GO_LOG", str(log))
    monkeypatch.setenv("KIBERTAS_ASYNC_CACHE", str(tmp_path / "cache"))
    return log


def _builds(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("build ")]


def test_plain_command_keeps_its_cache_path_and_tools_file(go_calls: Path, tmp_path: Path) -> None:
    path = go_command("tool", "example.com/tool", "v1.2.3", "example.com/tool/cmd/tool", progress=lambda _: None)
    assert path == tmp_path / "cache" / "bin" / "tool-v1.2.3" / "tool" == go_command_path("tool", "v1.2.3")
    wrapper = tmp_path / "cache" / "src" / "tool-v1.2.3"
    assert "require example.com/tool v1.2.3" in (wrapper / "go.mod").read_text()
    assert '_ "example.com/tool/cmd/tool"' in (wrapper / "tools.go").read_text()
    assert _builds(go_calls)[0].endswith(" example.com/tool/cmd/tool")


def test_own_sources_are_built_against_the_module_and_keyed_by_their_digest(go_calls: Path, tmp_path: Path) -> None:
    replaces = ["example.com/dep => example.com/dep v0.9.0"]
    sources = {"main.go": MAIN_GO}
    path = go_command("tool", "example.com/tool", "v1.2.3", ".", sources=sources, replaces=replaces, progress=print)
    assert path == go_command_path("tool", "v1.2.3", sources=sources, replaces=replaces)
    assert path.parent.name.startswith("tool-v1.2.3-") and path.parent != go_command_path("tool", "v1.2.3").parent
    assert os.access(path, os.X_OK)
    wrapper = tmp_path / "cache" / "src" / path.parent.name
    go_mod = (wrapper / "go.mod").read_text()
    assert "require example.com/tool v1.2.3\n" in go_mod
    assert "replace (\n\texample.com/dep => example.com/dep v0.9.0\n)" in go_mod
    assert (wrapper / "main.go").read_text() == MAIN_GO
    # A `package tools` file beside `package main` would break `go mod tidy`; "." needs none.
    assert not (wrapper / "tools.go").exists() and not (wrapper / "tools").exists()
    assert _builds(go_calls)[-1].endswith(f"/{path.name} .")  # built in a scratch directory, then moved

    # The same sources again: a cache hit. Edited sources: a binary of their own, built anew.
    assert go_command("tool", "example.com/tool", "v1.2.3", ".", sources=sources, replaces=replaces) == path
    assert len(_builds(go_calls)) == 1
    edited = go_command("tool", "example.com/tool", "v1.2.3", ".", sources={"main.go": MAIN_GO + "// edited\n"})
    assert edited != path and len(_builds(go_calls)) == 2
