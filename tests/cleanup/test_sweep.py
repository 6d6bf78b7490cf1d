"""The sweep's logic against an in-memory API server: discovery, the label double check, the order of
deletion, finalizers, dry runs and refusals. The same against real API servers: test_cleanup_sandbox.py."""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest

from kibertas_async.cleanup import (
    discover_resources,
    find_labelled,
    summary_lines,
    sweep,
    sweep_cluster,
    sweep_clusters,
)
from kibertas_async.kube import ClusterTarget, KubeApiError, KubeClient, KubeObject, KubeUnavailable, Resource
from kibertas_async.kube.resources import NAMESPACES

OURS = {"app.kubernetes.io/managed-by": "kibertas-async", "kibertas-async/run-id": "run-1"}
DISCOVERY: dict[str, KubeObject] = {
    "/api": {"versions": ["v1"]},
    "/apis": {
        "groups": [
            {
                "name": "rbac.authorization.k8s.io",
                "versions": [{"groupVersion": "rbac.authorization.k8s.io/v1"}],
                "preferredVersion": {"groupVersion": "rbac.authorization.k8s.io/v1"},
            },
            {
                "name": "example.com",
                "versions": [{"groupVersion": "example.com/v2"}, {"groupVersion": "example.com/v1"}],
                "preferredVersion": {"groupVersion": "example.com/v2"},
            },
            {
                "name": "metrics.k8s.io",
                "versions": [{"groupVersion": "metrics.k8s.io/v1beta1"}],
                "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1"},
            },
        ]
    },
    "/api/v1": {
        "resources": [
            {"name": "namespaces", "kind": "Namespace", "namespaced": False, "verbs": ["list", "delete", "get"]},
            {"name": "namespaces/status", "kind": "Namespace", "namespaced": False, "verbs": ["get", "patch"]},
            {"name": "configmaps", "kind": "ConfigMap", "namespaced": True, "verbs": ["list", "delete", "get"]},
            {"name": "bindings", "kind": "Binding", "namespaced": True, "verbs": ["create"]},
            {"name": "componentstatuses", "kind": "ComponentStatus", "namespaced": False, "verbs": ["list", "get"]},
        ]
    },
    "/apis/rbac.authorization.k8s.io/v1": {
        "resources": [
            {"name": "clusterroles", "kind": "ClusterRole", "namespaced": False, "verbs": ["list", "delete"]},
        ]
    },
    "/apis/example.com/v2": {
        "resources": [{"name": "widgets", "kind": "Widget", "namespaced": True, "verbs": ["list", "delete"]}]
    },
}
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
CLUSTERROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False)
WIDGETS = Resource("example.com", "v2", "widgets", "Widget")


class FakeApiServer:
    """Just enough of :class:`KubeClient` for the sweep. It ignores label selectors on purpose, as a
    broken proxy or server might: the sweep must check each object's labels itself."""

    def __init__(self) -> None:
        self.cluster = "fake"
        self.objects: dict[tuple[Resource, str | None, str], KubeObject] = {}
        self.deleted: list[str] = []
        self.refuse: set[str] = set()
        self._uid = 0

    def add(self, resource: Resource, name: str, namespace: str | None = None, **metadata: Any) -> None:
        self._uid += 1
        meta = {"name": name, "uid": f"uid-{self._uid}", **metadata}
        if namespace is not None:
            meta["namespace"] = namespace
        self.objects[(resource, namespace, name)] = {"metadata": meta}

    async def __aenter__(self) -> FakeApiServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def request(self, method: str, path: str, **_: Any) -> KubeObject:
        if path == "/apis/metrics.k8s.io/v1beta1":
            raise KubeApiError(503, "ServiceUnavailable", "the server is currently unable", method=method, path=path)
        return copy.deepcopy(DISCOVERY[path])

    async def list(self, resource: Resource, namespace: str | None = None, **_: Any) -> KubeObject:
        if resource.plural == "componentstatuses":
            raise AssertionError("listed a kind that cannot be deleted")
        items = [copy.deepcopy(obj) for (kind, _ns, _name), obj in self.objects.items() if kind == resource]
        return {"items": items, "metadata": {}}

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> KubeObject | None:
        found = self.objects.get((resource, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def delete(self, resource: Resource, name: str, namespace: str | None = None) -> bool:
        where = f"{namespace}/{name}" if namespace else name
        if where in self.refuse:
            raise KubeApiError(403, "Forbidden", "no", method="DELETE", path=resource.path(namespace, name))
        key = (resource, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            return False
        self.deleted.append(f"{resource.kind} {where}")
        if obj["metadata"].get("finalizers"):
            obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        else:
            del self.objects[key]
        return True


@pytest.fixture
def api() -> FakeApiServer:
    server = FakeApiServer()
    server.add(NAMESPACES, "kibertas-test-abc", labels=OURS)
    server.add(NAMESPACES, "default")
    server.add(CONFIGMAPS, "leftover", "default", labels=OURS)
    server.add(CONFIGMAPS, "users-own", "default", labels={"app": "mine"})
    server.add(CONFIGMAPS, "other-run", "default", labels={**OURS, "kibertas-async/run-id": "run-2"})
    server.add(CLUSTERROLES, "kibertas-test-reader", labels=OURS)
    server.add(WIDGETS, "w", "kibertas-test-abc", labels=OURS)
    return server


def kube(api: FakeApiServer) -> KubeClient:
    return cast(KubeClient, api)


@pytest.mark.anyio
async def test_discovery_takes_preferred_versions_of_listable_deletable_kinds(api: FakeApiServer) -> None:
    resources, problems = await discover_resources(kube(api))
    assert {(r.api_version, r.plural, r.namespaced) for r in resources} == {
        ("v1", "namespaces", False),
        ("v1", "configmaps", True),
        ("rbac.authorization.k8s.io/v1", "clusterroles", False),
        ("example.com/v2", "widgets", True),
    }
    assert problems == ["API group metrics.k8s.io/v1beta1: 503 ServiceUnavailable"]


@pytest.mark.anyio
async def test_only_labelled_objects_are_found_and_namespaces_come_last(api: FakeApiServer) -> None:
    resources, _ = await discover_resources(kube(api))
    found, _ = await find_labelled(kube(api), resources, "run-1")
    assert [item.describe() for item in found] == [
        "ConfigMap default/leftover",
        "Widget kibertas-test-abc/w",
        "ClusterRole kibertas-test-reader",
        "Namespace kibertas-test-abc",
    ]
    everything, _ = await find_labelled(kube(api), resources)
    assert "ConfigMap default/other-run" in [item.describe() for item in everything]


@pytest.mark.anyio
async def test_the_sweep_deletes_ours_and_nothing_else(api: FakeApiServer) -> None:
    result = await sweep_cluster(kube(api), "run-1", wait=1.0)
    assert result.ok
    assert api.deleted == [
        "ConfigMap default/leftover",
        "Widget kibertas-test-abc/w",
        "ClusterRole kibertas-test-reader",
        "Namespace kibertas-test-abc",
    ]
    survivors = {name for (_kind, _ns, name) in api.objects}
    assert survivors == {"default", "users-own", "other-run"}
    assert summary_lines(result, dry_run=False, wait=1.0)[-1] == "fake: deleted 4 object(s)"


@pytest.mark.anyio
async def test_a_dry_run_deletes_nothing(api: FakeApiServer) -> None:
    result = await sweep_cluster(kube(api), dry_run=True)
    assert api.deleted == []
    lines = summary_lines(result, dry_run=True, wait=1.0)
    assert "fake: would delete ConfigMap default/other-run" in lines
    assert "fake: would delete ConfigMap default/users-own" not in lines
    assert "fake: warning: not swept: API group metrics.k8s.io/v1beta1: 503 ServiceUnavailable" in lines


@pytest.mark.anyio
async def test_what_a_finalizer_holds_is_reported_with_it(api: FakeApiServer) -> None:
    api.add(CONFIGMAPS, "held", "default", labels=OURS, finalizers=["example.com/hold"])
    result = await sweep_cluster(kube(api), "run-1", wait=0.2)
    assert not result.ok
    assert [(item.describe(), item.finalizers) for item in result.remaining] == [
        ("ConfigMap default/held", ("example.com/hold",))
    ]
    assert (
        "fake: could not delete ConfigMap default/held: still there after 0.2s (finalizers: example.com/hold)"
        in summary_lines(result, dry_run=False, wait=0.2)
    )


@pytest.mark.anyio
async def test_a_refused_deletion_is_reported_and_the_rest_goes_on(api: FakeApiServer) -> None:
    api.refuse.add("kibertas-test-reader")
    result = await sweep_cluster(kube(api), "run-1", wait=0.2)
    assert not result.ok
    assert [(item.describe(), reason.split(":")[0]) for item, reason in result.failures] == [
        ("ClusterRole kibertas-test-reader", "403 Forbidden")
    ]
    assert "Namespace kibertas-test-abc" in api.deleted


@pytest.mark.anyio
async def test_a_cluster_lost_half_way_is_an_error_not_an_empty_sweep(
    api: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def connection_lost(*_args: Any, **_kwargs: Any) -> KubeObject:
        raise KubeUnavailable("GET /api/v1/configmaps: ServerDisconnectedError")

    async def connect(_target: ClusterTarget, **_kwargs: Any) -> FakeApiServer:
        return api

    monkeypatch.setattr(api, "list", connection_lost)
    monkeypatch.setattr(sweep, "connect", connect)
    [result] = await sweep_clusters([ClusterTarget(name="fake", context="fake")])
    assert result.error == "GET /api/v1/configmaps: ServerDisconnectedError"
    assert not result.ok
