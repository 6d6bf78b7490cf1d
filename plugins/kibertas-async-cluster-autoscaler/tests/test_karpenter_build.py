"""The sandbox's Karpenter listens on loopback only: built from a copy of its module whose operator binds
its metrics and health servers to 127.0.0.1 (tests/sandbox/test_network.py checks the running sandbox)."""

from __future__ import annotations

from kibertas_async_cluster_autoscaler.sandbox.karpenter import build_karpenter, loopback_module, module_directory


def test_the_copy_differs_from_the_module_in_the_two_bind_addresses_only() -> None:
    build_karpenter()  # instant when built; the module is then in the shared cache
    original = (module_directory() / "pkg" / "operator" / "operator.go").read_text(encoding="utf-8")
    patched = (loopback_module() / "pkg" / "operator" / "operator.go").read_text(encoding="utf-8")
    assert original.count('fmt.Sprintf(":%d"') == 2
    assert patched.count('fmt.Sprintf("127.0.0.1:%d"') == 2 and 'fmt.Sprintf(":%d"' not in patched
    assert patched.replace("127.0.0.1:%d", ":%d") == original
