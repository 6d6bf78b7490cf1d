"""The plugin's contract: registration, options, declared permissions, and a cheap import."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import kibertas_async_cert_manager
from kibertas_async.sandbox.errors import SandboxError
from kibertas_async_cert_manager import plugin
from kibertas_async_cert_manager.check import CertManagerCheck, parse_key_algorithm, parse_resource_name
from kibertas_async_cert_manager.sandbox.addon import (
    CONTROLLER_ENV,
    CONTROLLER_SOURCE,
    CertManagerAddon,
    load_crds,
    use_real_controller,
)
from kibertas_async_cert_manager.sandbox.issuer import parse_go_duration


def test_registers_the_check_and_the_sandbox_addon() -> None:
    assert plugin.kibertas_async_register_checks() == [CertManagerCheck]
    assert [addon.name for addon in plugin.kibertas_async_register_sandbox_addons()] == ["cert-manager"]
    assert isinstance(plugin.kibertas_async_register_sandbox_addons()[0], CertManagerAddon)


def test_permissions_are_least_privilege() -> None:
    declared = {(p.api_group, resource): set(p.verbs) for p in CertManagerCheck.permissions for resource in p.resources}
    assert declared == {
        ("cert-manager.io", "clusterissuers"): {"get"},
        ("cert-manager.io", "certificates"): {"create", "get", "list", "watch", "delete"},
        ("cert-manager.io", "issuers"): {"create", "get", "list", "watch", "delete"},
        ("", "secrets"): {"list", "watch"},  # read by list-then-watch, never by a plain GET
        # cert-manager's version, read from its Deployment (never a failure when refused)
        ("apps", "deployments"): {"list"},
        ("apps", "daemonsets"): {"list"},
    }
    urls = {url: set(p.verbs) for p in CertManagerCheck.permissions for url in p.non_resource_urls}
    assert urls == {"/apis/cert-manager.io/v1": {"get"}}


def test_option_parsers() -> None:
    assert parse_resource_name(" sample ") == "sample"
    assert parse_key_algorithm("ecdsa") == "ECDSA"
    assert parse_key_algorithm("ed25519") == "Ed25519"
    with pytest.raises(ValueError, match="not a lower-case DNS label"):
        parse_resource_name("Sample_1")
    with pytest.raises(ValueError, match="not a key algorithm"):
        parse_key_algorithm("DSA")


def test_go_durations_as_cert_manager_writes_them() -> None:
    assert parse_go_duration("2160h0m0s").total_seconds() == 2160 * 3600  # type: ignore[union-attr]
    assert parse_go_duration("1h30m").total_seconds() == 5400  # type: ignore[union-attr]
    assert parse_go_duration(None) is None
    with pytest.raises(ValueError, match="not a Go duration"):
        parse_go_duration("90 days")


def test_importing_the_plugin_does_not_import_cryptography() -> None:
    code = "import sys, kibertas_async_cert_manager.plugin; print('cryptography' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_crds_are_cert_managers_own() -> None:
    names = {crd["metadata"]["name"] for crd in load_crds()}
    assert {"certificates.cert-manager.io", "issuers.cert-manager.io", "clusterissuers.cert-manager.io"} <= names


def test_the_controller_is_real_unless_the_stand_in_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONTROLLER_ENV, raising=False)
    assert use_real_controller()
    monkeypatch.setenv(CONTROLLER_ENV, "stand-in")
    assert not use_real_controller()
    monkeypatch.setenv(CONTROLLER_ENV, "cert-manger")  # a typo must not silently pick one
    with pytest.raises(SandboxError, match=r"KIBERTAS_ASYNC_CERT_MANAGER_CONTROLLER='cert-manger': use one of"):
        use_real_controller()


def test_our_controller_main_ships_as_package_data() -> None:
    package = Path(kibertas_async_cert_manager.__file__).parent
    main_go = package / "sandbox" / CONTROLLER_SOURCE
    assert main_go.read_text(encoding="utf-8").startswith("// Command cert-manager-controller")
    pyproject = tomllib.loads((package.parent / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["kibertas_async_cert_manager"]
    assert any(main_go.relative_to(package).match(pattern) for pattern in patterns), patterns
