"""Minimal: every grant of the cert-manager check's generated role is needed. Each one is dropped in turn
(one service account per variant, all variants in one run) and the check, run without it, shows why it
was there, with the API server's 403 text naming the verb and resource; never a TIMEOUT.

How a missing grant shows depends on where the code needs it, so each grant has an expected effect:

- ``fails``: the check ends FAILED or ERROR at once, its reason the 403 (``cannot list resource
  "secrets" in API group ""``);
- ``cleanup``: the check passes, but a cleanup action fails with the 403 and its object is reported
  left behind (the engine does not turn a failed cleanup into a failed check);
- ``lost answer``: only needed when a POST's answer is lost (``ctx.create`` then looks the object up
  before retrying); proven by :func:`test_a_lost_answer_needs_get`, where it ends in the 403;
- ``race``: only needed when cert-manager marks a Certificate Ready before its Secret is readable
  (``ctx.wait_for`` lists, then watches), or when the CA Issuer is not Ready yet at the first list (the
  real cert-manager controller often marks it Ready before): the check then fails at once with the 403,
  and either effect is accepted;
- ``version fact``: only needed to read cert-manager's version from its Deployment; without it the
  check still passes and its ``cert-manager version`` fact is ``unknown (...)`` with the 403;
- ``diagnostics``: only needed to explain a check that did not pass (its events, pods and the add-on's
  log, :mod:`kibertas_async.diagnostics`); a passing run does not get there, and without it the
  diagnostics say ``not allowed ... (403)`` (``tests/diagnostics``);
- ``defaults``: every authenticated user has it anyway (``system:discovery``,
  ``system:public-info-viewer``), so dropping it from our role changes nothing.

A grant the table does not know, or one whose effect differs from the table, fails the test: a new
declaration must come with the proof that it is needed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from kibertas_async.checks import CheckContext, CleanupGuard, CleanupStack
from kibertas_async.events import get_logger
from kibertas_async.kube import ClusterTarget, KubeApiError, KubeClient, KubeObject, KubeUnavailable, connect
from kibertas_async.kube.resources import NAMESPACES, Resource
from kibertas_async.options import OptionValues
from kibertas_async.rbac import merge, rbac_manifests
from kibertas_async.sandbox.runner import Sandbox, SandboxCluster
from kibertas_async.testing import kubectl
from kibertas_async_cert_manager.check import CertManagerCheck
from kibertas_async_cert_manager.resources import CERTIFICATES, ISSUERS
from tests.rbac.access import NAMESPACE, Identity, apply, token, wait_until_authorizer, write_kubeconfig
from tests.rbac.walk import Grant, Variant, drop_each_grant, forbidden_text, grants_of, without

CERT_MANAGER = "cert-manager.io"
WALK_RUN_ID = "rbac-walk"
EXPECTED: dict[Grant, str] = {
    ("", "events", "list"): "diagnostics",
    ("", "namespaces", "create"): "fails",
    ("", "namespaces", "delete"): "cleanup",
    ("", "namespaces", "get"): "lost answer",
    ("", "namespaces", "list"): "cleanup",  # cleanup waits, list-then-watch, until the namespace is gone
    ("", "namespaces", "watch"): "cleanup",
    ("", "pods", "list"): "diagnostics",
    ("", "pods/log", "get"): "diagnostics",
    ("", "secrets", "list"): "fails",
    ("", "secrets", "watch"): "race",
    ("apps", "daemonsets", "list"): "version fact",
    ("apps", "deployments", "list"): "version fact",
    (CERT_MANAGER, "certificates", "create"): "fails",
    (CERT_MANAGER, "certificates", "delete"): "cleanup",
    (CERT_MANAGER, "certificates", "get"): "lost answer",
    (CERT_MANAGER, "certificates", "list"): "fails",
    (CERT_MANAGER, "certificates", "watch"): "fails",
    (CERT_MANAGER, "clusterissuers", "get"): "fails",
    (CERT_MANAGER, "issuers", "create"): "fails",
    (CERT_MANAGER, "issuers", "delete"): "cleanup",
    (CERT_MANAGER, "issuers", "get"): "lost answer",
    (CERT_MANAGER, "issuers", "list"): "fails",
    (CERT_MANAGER, "issuers", "watch"): "race",
    ("nonResourceURL", "/apis/cert-manager.io/v1", "get"): "defaults",
    ("nonResourceURL", "/version", "get"): "defaults",
}


@pytest.fixture(scope="module")
def cluster(sandbox: Sandbox) -> SandboxCluster:
    return sandbox.cluster("sandbox-1")


@pytest.fixture(scope="module")
def walked(
    sandbox: Sandbox, cluster: SandboxCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Variant]]:
    """The cert-manager check run once per grant of its role, without that grant (60 s per check at most)."""
    work = tmp_path_factory.mktemp("rbac-walk")
    try:
        yield drop_each_grant(sandbox, cluster, CertManagerCheck, work, run_id=WALK_RUN_ID, check_timeout="60s")
    finally:
        _remove_accounts(sandbox, cluster, "drop-")
        # What a variant without a delete grant could not remove, removed as the admin.
        kubectl(sandbox, cluster, "delete", "namespaces", "-l", f"kibertas-async/run-id={WALK_RUN_ID}", "--wait=false")


def _remove_accounts(sandbox: Sandbox, cluster: SandboxCluster, prefix: str) -> None:
    names = kubectl(sandbox, cluster, "get", "serviceaccounts", "-n", NAMESPACE, "-o", "name").stdout.split()
    accounts = [name.split("/", 1)[1] for name in names if name.split("/", 1)[1].startswith(prefix)]
    for kind in ("clusterrolebinding", "clusterrole"):
        kubectl(sandbox, cluster, "delete", kind, "--ignore-not-found", *accounts, check=False)
    if accounts:
        kubectl(sandbox, cluster, "delete", "serviceaccount", "-n", NAMESPACE, *accounts, check=False)


def test_the_table_names_every_grant_of_the_generated_role() -> None:
    assert set(grants_of(CertManagerCheck)) == set(EXPECTED)


def _effect(variant: Variant) -> str:
    """What dropping the grant did, in the table's words (``passed`` when nothing showed it)."""
    if variant.granted_anyway:
        return "defaults"
    result = variant.result
    assert result is not None, f"{variant.describe()}: not in the report"
    assert result["outcome"] != "timeout", f"{variant.describe()}: a 403 must end the check at once: {result}"
    denied = forbidden_text(variant.grant)
    if result["outcome"] in ("failed", "error"):
        assert denied in result["reason"], f"{variant.describe()}: the reason must name it: {result['reason']}"
        return "fails"
    assert result["outcome"] == "passed", result
    failed = [item for item in result["cleanup"] if item["status"] != "done"]
    if failed:
        assert all(denied in item["detail"] for item in failed), failed
        return "cleanup"
    if denied in result["facts"].get("cert-manager version", ""):
        return "version fact"
    return "passed"


def test_dropping_any_grant_shows_it_was_needed(walked: list[Variant]) -> None:
    effects = {variant.grant: _effect(variant) for variant in walked}
    for grant, effect in effects.items():
        if EXPECTED.get(grant) == "race" and effect == "fails":
            effects[grant] = "passed"  # needed this time: the 403 ended the check at once (``_effect``)
    expected = {
        grant: (effect if effect in ("fails", "cleanup", "defaults", "version fact") else "passed")
        for grant, effect in EXPECTED.items()
    }
    assert effects == expected


# --- the grants only a lost answer needs ---------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


LOST_ANSWER_RUN_ID = "rbac-lost-answer"
LOST_ANSWER_CASES: dict[str, tuple[Resource, KubeObject]] = {
    "namespaces": (NAMESPACES, {}),
    "certificates": (
        CERTIFICATES,
        {
            "metadata": {"name": "lost-answer"},
            "spec": {
                "secretName": "lost-answer",
                "commonName": "lost-answer",
                "issuerRef": {"name": "selfsigned-issuer", "kind": "ClusterIssuer", "group": CERT_MANAGER},
            },
        },
    ),
    "issuers": (ISSUERS, {"metadata": {"name": "lost-answer"}, "spec": {"selfSigned": {}}}),
}


@pytest.mark.anyio
@pytest.mark.parametrize("plural", list(LOST_ANSWER_CASES))
@pytest.mark.parametrize("granted", [True, False], ids=["with-get", "without-get"])
async def test_a_lost_answer_needs_get(
    sandbox: Sandbox, cluster: SandboxCluster, tmp_path: Path, plural: str, granted: bool
) -> None:
    """The POST goes through but its answer is lost: ``ctx.create`` (and ``ctx.namespace``) look the
    object up by name before sending it again. With the generated role the object is found and cleaned
    up; without ``get`` the create ends in the 403 naming it."""
    resource, manifest = LOST_ANSWER_CASES[plural]
    dropped: Grant = (resource.group, plural, "get")
    account = f"lost-answer-{plural}-{'with' if granted else 'without'}-get"
    documents = rbac_manifests(
        merge(without(grants_of(CertManagerCheck), None if granted else dropped)),
        [CertManagerCheck.name],
        namespace=NAMESPACE,
        service_account=account,
    )
    apply(sandbox, cluster, json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
    scratch = None if resource is NAMESPACES else f"{account}-scratch"
    try:
        if scratch is not None:
            kubectl(sandbox, cluster, "create", "namespace", scratch)
        wait_until_authorizer(cluster, account, "create", "", "namespaces", allowed=True)
        identity = Identity(account, cluster, account, token(sandbox, cluster, account))
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", [identity])
        async with await connect(ClusterTarget(account, context=account, kubeconfig=str(kubeconfig))) as kube:
            cleanup = CleanupStack(keep=False, action_timeout=30, guard=CleanupGuard())
            ctx = _context(kube, cleanup)
            _lose_every_answer(kube)
            try:
                if granted:
                    created = await _create(ctx, resource, manifest, scratch)
                    assert created["metadata"]["labels"]["kibertas-async/run-id"] == LOST_ANSWER_RUN_ID
                else:
                    with pytest.raises(KubeApiError) as refused:
                        await _create(ctx, resource, manifest, scratch)
                    assert refused.value.status == 403
                    assert forbidden_text(dropped) in refused.value.message, refused.value
            finally:
                results = await cleanup.run()
            if granted:
                assert [item.status for item in results] == ["done"], results
    finally:
        # Without get, cleanup cannot find what the lost answer created: removed here, as the admin.
        kubectl(sandbox, cluster, "delete", "namespaces", "-l", f"kibertas-async/run-id={LOST_ANSWER_RUN_ID}")
        if scratch is not None:
            kubectl(sandbox, cluster, "delete", "namespace", scratch, "--wait=false", check=False)
        _remove_accounts(sandbox, cluster, account)


def _context(kube: KubeClient, cleanup: CleanupStack) -> CheckContext:
    return CheckContext(
        run_id=LOST_ANSWER_RUN_ID,
        check_name=CertManagerCheck.name,
        cluster=ClusterTarget(kube.cluster),
        options=OptionValues({}, {}),
        log=get_logger(),
        cleanup=cleanup,
        kube=kube,
        deadline=math.inf,
    )


def _lose_every_answer(kube: KubeClient) -> None:
    """Each POST reaches the API server, then the connection drops before its answer is read."""
    real_create = kube.create

    async def create(resource: Resource, manifest: KubeObject, namespace: str | None = None) -> KubeObject:
        await real_create(resource, manifest, namespace)
        raise KubeUnavailable("POST: ServerDisconnectedError: the connection closed before the answer")

    kube.create = create  # type: ignore[method-assign]


async def _create(ctx: CheckContext, resource: Resource, manifest: KubeObject, namespace: str | None) -> KubeObject:
    if resource is NAMESPACES:
        name = await ctx.namespace("lost-answer")
        found = await ctx.kube.get(NAMESPACES, name)
        assert found is not None
        return found
    return await ctx.create(resource, manifest, namespace)
