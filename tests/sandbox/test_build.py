"""The builder with a stand-in ``go`` command: wrapper modules, cache hits, failures, --bin-dir."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from kibertas_async.errors import UsageError
from kibertas_async.sandbox.build import SandboxBinaries, ensure_binaries
from kibertas_async.sandbox.errors import SandboxBuildError

KUBERNETES_GO_MOD = """module k8s.io/kubernetes

go 1.26.0

require k8s.io/api v0.0.0

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)

replace k8s.io/kubectl => ./staging/src/k8s.io/kubectl
"""

FAKE_GO = """#!{python}
import json, os, pathlib, sys
args = sys.argv[1:]
with open(os.environ["FAKE_GO_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
if args[:2] == ["env", "GOVERSION"]:
    print("go1.26.8")
elif args[:3] == ["mod", "download", "-json"]:
    print(json.dumps({{"GoMod": os.environ["FAKE_GO_MOD"]}}))
elif args[0] == "build":
    failing = os.environ.get("FAKE_GO_FAIL_ON")
    if failing and failing in args:
        print("# " + failing + "\\nserver/main.go:1:1: compile error: boom", file=sys.stderr)
        sys.exit(1)
    target = args[args.index("-o") + 1]
    packages = args[args.index("-o") + 2 :]
    outputs = [target + p.rsplit("/", 1)[1] for p in packages] if target.endswith("/") else [target]
    for output in outputs:
        pathlib.Path(output).write_text("#!/bin/sh\\n")
        os.chmod(output, 0o755)
"""


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``go`` on PATH that records its arguments and fakes downloads and builds; returns its log."""
    tool_dir = tmp_path / "go-bin"
    tool_dir.mkdir()
    go = tool_dir / "go"
    go.write_text(FAKE_GO.format(python=sys.executable))
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    go_mod = tmp_path / "kubernetes.mod"
    go_mod.write_text(KUBERNETES_GO_MOD)
    log = tmp_path / "go-calls.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{tool_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GO_LOG", str(log))
    monkeypatch.setenv("FAKE_GO_MOD", str(go_mod))
    monkeypatch.setenv("KIBERTAS_ASYNC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KIBERTAS_ASYNC_SANDBOX_BIN_DIR", raising=False)
    return log


def test_build_writes_wrapper_modules_and_versioned_binaries(fake_go: Path, tmp_path: Path) -> None:
    progress: list[str] = []
    binaries = ensure_binaries("1.36.3", progress=progress.append)

    cache = tmp_path / "cache"
    assert binaries.kube_apiserver == cache / "bin" / "kubernetes-v1.36.3" / "kube-apiserver"
    assert binaries.etcd == cache / "bin" / "etcd-v3.6.16" / "etcd"
    assert binaries.missing() == []
    wrapper = cache / "src" / "k8s-v1.36.3"
    go_mod = (wrapper / "go.mod").read_text()
    assert "module kibertasbuild/kubernetes\n\ngo 1.26\n" in go_mod
    assert "require k8s.io/kubernetes v1.36.3" in go_mod
    for module in ("k8s.io/api", "k8s.io/client-go", "k8s.io/kubectl"):
        assert f"{module} => {module} v0.36.3" in go_mod
    assert '_ "k8s.io/kubernetes/cmd/kube-apiserver"' in (wrapper / "tools.go").read_text()
    calls = fake_go.read_text()
    assert "-X k8s.io/component-base/version.gitVersion=v1.36.3" in calls
    assert "-X k8s.io/client-go/pkg/version.gitMinor=36" in calls
    assert any("kubernetes v1.36.3: done" in line for line in progress)


def test_second_build_is_a_cache_hit_and_versions_coexist(fake_go: Path) -> None:
    ensure_binaries("1.36.3", progress=lambda _line: None)
    calls_after_first = fake_go.read_text()
    ensure_binaries("1.36.3", progress=lambda _line: None)
    assert fake_go.read_text() == calls_after_first  # go was not even started

    older = ensure_binaries("1.35.4", progress=lambda _line: None)
    assert older.kube_apiserver.parent.name == "kubernetes-v1.35.4"
    assert ensure_binaries("1.36.3").missing() == []
    assert "k8s.io/api => k8s.io/api v0.35.4" in (older.etcd.parents[2] / "src" / "k8s-v1.35.4" / "go.mod").read_text()


def test_a_failed_build_names_the_module_and_quotes_go(fake_go: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL_ON", "go.etcd.io/etcd/server/v3")
    with pytest.raises(SandboxBuildError) as raised:
        ensure_binaries("1.36.3", progress=lambda _line: None)
    message = str(raised.value)
    assert "go.etcd.io/etcd/server/v3@v3.6.16" in message
    assert "compile error: boom" in message
    assert "build.log" in message


def test_bin_dir_skips_go_and_must_be_complete(fake_go: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "release"
    bin_dir.mkdir()
    for path in SandboxBinaries.in_directory(bin_dir).all()[:-1]:
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    with pytest.raises(UsageError, match="lacks kwok"):
        ensure_binaries(bin_dir=bin_dir)
    kwok = bin_dir / "kwok"
    kwok.write_text("#!/bin/sh\n")
    kwok.chmod(0o755)
    assert ensure_binaries(bin_dir=bin_dir).kwok == kwok
    assert fake_go.read_text() == ""


def test_an_unusable_kubernetes_version_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"MAJOR\.MINOR\.PATCH"):
        ensure_binaries("1.36")
