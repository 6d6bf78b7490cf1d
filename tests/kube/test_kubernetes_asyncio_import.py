"""kubernetes_asyncio is imported without its ~900 API and model modules, and still works whole when asked."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from kibertas_async.kube import _kubernetes_asyncio
Configuration, ApiClient, config = _kubernetes_asyncio.load()
loaded = sorted(name for name in sys.modules if name.startswith("kubernetes_asyncio"))
configuration = Configuration()
configuration.host = "https://127.0.0.1:1"
first = {"loaded": len(loaded), "models": [n for n in loaded if ".models." in n or ".api." in n]}
# Asking the package for something the tool does not use imports the real package, same classes.
import kubernetes_asyncio.client
core = kubernetes_asyncio.client.CoreV1Api
pod = kubernetes_asyncio.client.models.V1Pod
from kubernetes_asyncio.client import ApiClient as Again
print(json.dumps({**first, "core": core.__name__, "pod": pod.__name__, "same": Again is ApiClient,
    "config_uses_same": config.kube_config.ApiClient is ApiClient,
    "after": sum(1 for name in sys.modules if name.startswith("kubernetes_asyncio"))}))
"""


def probe(code: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_load_imports_only_what_the_tool_uses_and_the_rest_on_demand() -> None:
    result = probe(PROBE)
    assert result["models"] == []  # no API class or model module imported by load()
    assert isinstance(result["loaded"], int) and result["loaded"] < 40
    assert result["core"] == "CoreV1Api" and result["pod"] == "V1Pod"
    assert result["same"] is True and result["config_uses_same"] is True
    assert isinstance(result["after"], int) and result["after"] > 500  # the real package, whole


def test_load_uses_the_real_package_when_it_is_already_imported() -> None:
    result = probe(
        "import json, sys, kubernetes_asyncio\n"
        "from kibertas_async.kube import _kubernetes_asyncio\n"
        "Configuration, ApiClient, config = _kubernetes_asyncio.load()\n"
        "import kubernetes_asyncio.client as client\n"
        "kind = type(sys.modules['kubernetes_asyncio']).__name__\n"
        "print(json.dumps({'same': client.ApiClient is ApiClient, 'kind': kind}))"
    )
    assert result == {"same": True, "kind": "module"}
