"""KubeClient.request_text: an endpoint that answers plain text (a container log, the health checks)."""

from __future__ import annotations

import pytest

from kibertas_async.kube import KubeApiError, KubeClient

pytestmark = pytest.mark.anyio


async def test_a_plain_text_answer_comes_back_as_text_and_is_counted(sandbox_client: KubeClient) -> None:
    kube = sandbox_client.view()
    assert await kube.request_text("/healthz") == "ok"
    verbose = await kube.request_text("/readyz", query={"verbose": "true"})
    assert "[+]etcd ok" in verbose and verbose.rstrip().endswith("readyz check passed")
    assert kube.requests_made == 2 and kube.requests_by_verb["GET"] == 2


async def test_an_error_answer_is_a_kube_api_error(sandbox_client: KubeClient) -> None:
    with pytest.raises(KubeApiError) as raised:
        await sandbox_client.request_text("/api/v1/namespaces/default/pods/no-such-pod/log")
    assert raised.value.status == 404
