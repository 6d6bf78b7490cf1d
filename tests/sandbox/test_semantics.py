"""Real Kubernetes semantics in the sandbox: controllers, scheduler, kwok, RBAC, finalization."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION
from kibertas_async.testing import api_client, kubectl
from tests.sandbox.manifests import body

pytestmark = pytest.mark.anyio

# A guard against hanging forever, not a performance assertion.
WAIT_LIMIT = 90.0


async def eventually(condition: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; return that."""
    with anyio.fail_after(WAIT_LIMIT):
        while True:
            if result := await condition():
                return result
            await anyio.sleep(0.2)
    raise AssertionError(what)  # pragma: no cover - fail_after raises first


def deployment(name: str, replicas: int, pod_spec_extra: dict[str, Any] | None = None) -> Any:
    labels = {"app": name}
    return body(
        {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}],
                        **(pod_spec_extra or {}),
                    },
                },
            },
        }
    )


async def test_deployment_becomes_ready_and_service_gets_endpoint_slices(
    sandbox_cluster: SandboxCluster, namespace: str
) -> None:
    async with api_client(sandbox_cluster) as api:
        apps, core, discovery = client.AppsV1Api(api), client.CoreV1Api(api), client.DiscoveryV1Api(api)
        await apps.create_namespaced_deployment(namespace, deployment("web", 3))
        await core.create_namespaced_service(
            namespace,
            body({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        )

        async def ready() -> bool:
            status = (await apps.read_namespaced_deployment("web", namespace)).status
            return status.ready_replicas == 3 and status.available_replicas == 3

        await eventually(ready, "Deployment web never became Ready")
        pods = (await core.list_namespaced_pod(namespace, label_selector="app=web")).items
        assert len(pods) == 3
        assert all(pod.status.phase == "Running" and pod.spec.node_name for pod in pods)
        pod_ips = {pod.status.pod_ip for pod in pods}
        assert None not in pod_ips

        async def endpoint_addresses() -> set[str]:
            slices = await discovery.list_namespaced_endpoint_slice(
                namespace, label_selector="kubernetes.io/service-name=web"
            )
            ready_addresses = {
                address
                for endpoint_slice in slices.items
                for endpoint in endpoint_slice.endpoints or []
                if endpoint.conditions.ready
                for address in endpoint.addresses
            }
            return ready_addresses if ready_addresses == pod_ips else set()

        assert await eventually(endpoint_addresses, "EndpointSlices never listed the pods") == pod_ips


async def test_anti_affinity_and_node_affinity_leave_the_extra_replica_pending(
    sandbox_cluster: SandboxCluster, namespace: str
) -> None:
    spot_only = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "eks.amazonaws.com/capacityType", "operator": "In", "values": ["SPOT"]}
                            ]
                        }
                    ]
                }
            },
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "spread"}}, "topologyKey": "kubernetes.io/hostname"}
                ]
            },
        }
    }
    async with api_client(sandbox_cluster) as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        spot_nodes = {
            node.metadata.name
            for node in (await core.list_node(label_selector="eks.amazonaws.com/capacityType=SPOT")).items
        }
        replicas = len(spot_nodes) + 1
        await apps.create_namespaced_deployment(namespace, deployment("spread", replicas, spot_only))

        async def settled() -> list[Any]:
            pods = (await core.list_namespaced_pod(namespace, label_selector="app=spread")).items
            running = [pod for pod in pods if pod.status.phase == "Running"]
            unschedulable = [
                pod
                for pod in pods
                if any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in pod.status.conditions or [])
            ]
            return pods if len(running) == len(spot_nodes) and len(unschedulable) == 1 else []

        pods = await eventually(settled, "replicas never settled to one per spot node plus one pending")
        nodes_used = [pod.spec.node_name for pod in pods if pod.status.phase == "Running"]
        assert sorted(nodes_used) == sorted(spot_nodes), "two replicas share a node, or one ran on on-demand"
        pending = next(pod for pod in pods if pod.status.phase == "Pending")
        assert pending.spec.node_name is None

        async def failed_scheduling_event() -> bool:
            events = await core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={pending.metadata.name}"
            )
            return any(event.reason == "FailedScheduling" for event in events.items)

        await eventually(failed_scheduling_event, "no FailedScheduling event for the pending replica")


async def test_deleting_a_namespace_finalizes_it(sandbox_cluster: SandboxCluster, namespace: str) -> None:
    async with api_client(sandbox_cluster) as api:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        await apps.create_namespaced_deployment(namespace, deployment("doomed", 2))
        await core.create_namespaced_config_map(namespace, body({"metadata": {"name": "doomed"}, "data": {"a": "b"}}))
        await core.delete_namespace(namespace)

        async def gone() -> bool:
            try:
                await core.read_namespace(namespace)
            except ApiException as error:
                return error.status == 404
            return False

        await eventually(gone, f"namespace {namespace} was never finalized")


async def test_rbac_denies_a_service_account_what_its_role_does_not_grant(
    sandbox_cluster: SandboxCluster, namespace: str
) -> None:
    async with api_client(sandbox_cluster) as admin_api:
        core, rbac = client.CoreV1Api(admin_api), client.RbacAuthorizationV1Api(admin_api)
        await core.create_namespaced_service_account(namespace, body({"metadata": {"name": "reader"}}))
        await rbac.create_namespaced_role(
            namespace,
            body(
                {
                    "metadata": {"name": "pod-reader"},
                    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
                }
            ),
        )
        await rbac.create_namespaced_role_binding(
            namespace,
            body(
                {
                    "metadata": {"name": "reader-reads-pods"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                    "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
                }
            ),
        )
        token_request = await core.create_namespaced_service_account_token(
            "reader", namespace, body({"spec": {"expirationSeconds": 600}})
        )
        token = token_request.status.token

    configuration = client.Configuration(host=sandbox_cluster.server)
    configuration.ssl_ca_cert = str(sandbox_cluster.ca_file)
    configuration.api_key = {"BearerToken": token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    async with client.ApiClient(configuration) as reader_api:
        reader = client.CoreV1Api(reader_api)
        await reader.list_namespaced_pod(namespace)  # granted
        for denied in (
            reader.list_namespaced_secret(namespace),
            reader.list_namespaced_pod("default"),
            reader.create_namespaced_config_map(namespace, body({"metadata": {"name": "nope"}})),
        ):
            with pytest.raises(ApiException) as raised:
                await denied
            assert raised.value.status == 403


async def test_every_namespace_gets_the_cluster_root_ca(sandbox_cluster: SandboxCluster, namespace: str) -> None:
    async with api_client(sandbox_cluster) as api:
        core = client.CoreV1Api(api)

        async def root_ca() -> str | None:
            try:
                config_map = await core.read_namespaced_config_map("kube-root-ca.crt", namespace)
            except ApiException:
                return None
            return str(config_map.data["ca.crt"])

        published = await eventually(root_ca, "kube-root-ca.crt was never published")
    assert published.strip() == sandbox_cluster.ca_file.read_text().strip()


def test_kubectl_and_the_second_cluster_report_the_pinned_version(sandbox: Sandbox) -> None:
    versions = json.loads(kubectl(sandbox, "sandbox-2", "version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == f"v{DEFAULT_KUBERNETES_VERSION}"
    assert versions["serverVersion"]["gitVersion"] == f"v{DEFAULT_KUBERNETES_VERSION}"
    nodes = json.loads(kubectl(sandbox, "sandbox-2", "get", "nodes", "-o", "json").stdout)["items"]
    capacity_types = sorted(node["metadata"]["labels"]["eks.amazonaws.com/capacityType"] for node in nodes)
    assert capacity_types == ["ON_DEMAND", "ON_DEMAND", "SPOT", "SPOT"]
