"""``_kubernetes_asyncio.load_kubeconfig`` sets a client configuration as kubernetes_asyncio's own
``load_kube_config`` does, from the documents parsed once (libyaml), and ``load()`` leaves urllib3 out."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kibertas_async.clusters.kubeconfig_file import load_kubeconfig_document
from kibertas_async.kube import _kubernetes_asyncio

FIRST = """
apiVersion: v1
kind: Config
current-context: with-token
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: certs/ca.crt}
- name: plain
  cluster: {server: "http://127.0.0.1:8080", insecure-skip-tls-verify: true}
contexts:
- name: with-token
  context: {cluster: local, user: token-user}
- name: with-password
  context: {cluster: plain, user: password-user}
users:
- name: token-user
  user: {token: first-token}
- name: password-user
  user: {username: someone, password: secret}
"""
SECOND = """
apiVersion: v1
kind: Config
current-context: second-only
clusters:
- name: local
  cluster: {server: "https://10.0.0.1:6443"}
- name: other
  cluster: {server: "https://127.0.0.2:6443", certificate-authority: other-ca.crt}
contexts:
- name: with-token
  context: {cluster: other, user: token-user}
- name: second-only
  context: {cluster: other, user: client-cert}
users:
- name: client-cert
  user: {client-certificate: client.crt, client-key: client.key}
"""
FIELDS = ("host", "api_key", "api_key_prefix", "ssl_ca_cert", "cert_file", "key_file", "verify_ssl", "username")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _kubeconfig(tmp_path: Path) -> str:
    first, second = tmp_path / "a" / "config", tmp_path / "b" / "config"
    for path, text in ((first, FIRST), (second, SECOND)):
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
    for name in ("a/certs/ca.crt", "b/other-ca.crt", "b/client.crt", "b/client.key"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("not read before a connection\n", encoding="utf-8")
    return os.pathsep.join([str(first), str(second)])


def _fields(configuration: Any) -> dict[str, Any]:
    return {name: getattr(configuration, name) for name in FIELDS} | {"password": configuration.password}


@pytest.mark.anyio
@pytest.mark.parametrize("context", [None, "with-token", "with-password", "second-only"])
async def test_the_configuration_is_the_one_kubernetes_asyncio_loads(tmp_path: Path, context: str | None) -> None:
    kubeconfig = _kubeconfig(tmp_path)
    configuration_class, _api_client, config = _kubernetes_asyncio.load()
    theirs, ours = configuration_class(), configuration_class()
    await config.load_kube_config(
        config_file=kubeconfig, context=context, client_configuration=theirs, persist_config=False
    )
    await _kubernetes_asyncio.load_kubeconfig(ours, kubeconfig, context)
    assert _fields(ours) == _fields(theirs)
    assert ours.host  # something was loaded, not two empty configurations


@pytest.mark.anyio
async def test_the_shared_parsed_documents_are_left_as_they_were(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path)
    documents = [load_kubeconfig_document(Path(path)) for path in kubeconfig.split(os.pathsep)]
    before = copy.deepcopy(documents)
    configuration_class, _api_client, _config = _kubernetes_asyncio.load()
    await _kubernetes_asyncio.load_kubeconfig(configuration_class(), kubeconfig, "with-password")
    assert documents == before


@pytest.mark.anyio
async def test_a_missing_context_is_an_error_as_in_kubernetes_asyncio(tmp_path: Path) -> None:
    configuration_class, _api_client, config = _kubernetes_asyncio.load()
    with pytest.raises(config.ConfigException, match="absent"):
        await _kubernetes_asyncio.load_kubeconfig(configuration_class(), _kubeconfig(tmp_path), "absent")


PROBE = """
import json, sys
from kibertas_async.kube import _kubernetes_asyncio
Configuration, ApiClient, config = _kubernetes_asyncio.load()
without = "urllib3" in sys.modules
configuration = Configuration()
configuration.username, configuration.password = "someone", "secret"
header = configuration.get_basic_auth_token()
import urllib3, urllib3.util
print(json.dumps({"urllib3_after_load": without, "header": header,
    "real": type(sys.modules["urllib3"]).__name__ == "module" and hasattr(urllib3, "PoolManager")}))
"""


def test_load_does_not_import_urllib3_and_basic_auth_still_works() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {
        "urllib3_after_load": False,
        "header": "Basic c29tZW9uZTpzZWNyZXQ=",
        "real": True,
    }
