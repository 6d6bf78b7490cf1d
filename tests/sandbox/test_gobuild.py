"""``go_command`` with a stand-in ``go``: the plain form add-ons use as is, and a wrapper module with Go
sources of our own (cert-manager's controllers under our ``main``) and extra ``replace`` lines."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from kibertas_async.sandbox.errors import SandboxError
from kibertas_async.sandbox.gobuild import (
    TextEdit,
    go_command,
    go_command_path,
    module_replaces,
    patched_module,
    patched_module_path,
)
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


GO_MOD = """module example.com/Tool/v2

go 1.24

require k8s.io/api v0.31.0

replace (
	k8s.io/api => k8s.io/api v0.31.0 // the same version everywhere
	example.com/local => ./staging/local
)

replace github.com/old/dns v1.1.41 => github.com/old/dns v1.1.34
replace example.com/other => ../other
"""


def _cached_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``example.com/Tool/v2@v2.0.0`` already in the module cache (so no ``go`` is run), as go stores it."""
    monkeypatch.setenv("KIBERTAS_ASYNC_CACHE", str(tmp_path / "cache"))
    directory = tmp_path / "cache" / "go" / "mod" / "example.com" / "!tool" / "v2@v2.0.0"
    (directory / "server").mkdir(parents=True)
    (directory / "go.mod").write_text(GO_MOD)
    (directory / "server" / "server.go").write_text('listen(fmt.Sprintf("0.0.0.0:%d", port))\n')
    for path in (directory / "go.mod", directory / "server" / "server.go"):
        path.chmod(0o444)  # the module cache's files are read-only
    return directory


def test_module_replaces_are_its_go_mods_version_replaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cached_module(tmp_path, monkeypatch)
    assert module_replaces("example.com/Tool/v2", "v2.0.0") == [
        "k8s.io/api => k8s.io/api v0.31.0",
        "github.com/old/dns v1.1.41 => github.com/old/dns v1.1.34",
    ]


def test_a_patched_module_differs_in_its_edits_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = _cached_module(tmp_path, monkeypatch)
    edit = TextEdit("server/server.go", '"0.0.0.0:%d"', '"127.0.0.1:%d"')
    patched = patched_module("example.com/Tool/v2", "v2.0.0", "loopback-1", [edit])
    assert patched == patched_module_path("example.com/Tool/v2", "v2.0.0", "loopback-1")
    assert (patched / "server" / "server.go").read_text() == 'listen(fmt.Sprintf("127.0.0.1:%d", port))\n'
    assert (patched / "go.mod").read_text() == (original / "go.mod").read_text()
    assert (original / "server" / "server.go").read_text().count("0.0.0.0") == 1
    # Made once: a second call finds the copy, even with edits that would no longer apply.
    assert patched_module("example.com/Tool/v2", "v2.0.0", "loopback-1", [TextEdit("go.mod", "gone", "x")]) == patched


def test_an_edit_whose_text_moved_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _cached_module(tmp_path, monkeypatch)
    twice = TextEdit("server/server.go", "0.0.0.0", "127.0.0.1", count=2)
    with pytest.raises(SandboxError, match=r"server/server.go: expected 2 of '0.0.0.0' to patch, found 1"):
        patched_module("example.com/Tool/v2", "v2.0.0", "loopback-2", [twice])
    assert not (patched_module_path("example.com/Tool/v2", "v2.0.0", "loopback-2") / ".kibertas-async-patched").exists()
