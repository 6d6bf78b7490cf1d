"""The generated RBAC is deterministic, merged and sorted; ``run --dry-run`` shows the same rules and
``list --json`` the declarations; bad input is one line and exit code 2. No cluster needed."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from kibertas_async.checks import Check, Permission
from kibertas_async.cli import main
from kibertas_async.plugins import create_plugin_manager
from kibertas_async.rbac import CLUSTER_WIDE, ENGINE_PERMISSIONS, Rule, merge, rbac_manifests, rbac_rules


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _cluster_role(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return next(document for document in documents if document["kind"] == "ClusterRole")


def test_the_output_is_byte_identical_every_time_and_yaml_matches_json(capsys: pytest.CaptureFixture[str]) -> None:
    first = _cli(capsys, "rbac", "--all")
    assert first[0] == 0, first[2]
    assert _cli(capsys, "rbac", "--all") == first
    code, as_json, _ = _cli(capsys, "rbac", "--all", "--format", "json")
    assert code == 0
    documents = list(yaml.safe_load_all(first[1]))
    assert json.loads(as_json)["items"] == documents
    assert [document["kind"] for document in documents] == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
    for document in documents:
        assert list(document)[:3] == ["apiVersion", "kind", "metadata"]


def test_the_order_of_checks_and_declarations_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    names = sorted(create_plugin_manager().checks)
    code, expected, _ = _cli(capsys, "rbac", *names)
    assert code == 0
    assert _cli(capsys, "rbac", *reversed(names))[1] == expected
    assert _cli(capsys, "rbac", "--all")[1] == expected
    declared = [
        *ENGINE_PERMISSIONS,
        *(p for check in create_plugin_manager().checks.values() for p in check.permissions),
    ]
    split = [
        Permission(p.api_group, (resource,), (verb,), p.namespace)
        if p.resources
        else Permission(verbs=(verb,), non_resource_urls=p.non_resource_urls)
        for p in declared
        for resource in (p.resources or ("-",))
        for verb in p.verbs
    ]
    random.Random(9).shuffle(split)
    assert merge(split) == merge(declared)


def test_rules_are_merged_and_sorted() -> None:
    merged = merge(
        [
            Permission("apps", ("deployments",), ("watch", "create")),
            Permission("apps", ("deployments",), ("get", "create")),  # same group and resource: verbs joined
            Permission("", ("services",), ("get",)),
            Permission("", ("pods", "events"), ("list",)),
            Permission("", ("nodes",), ("list",)),  # same verbs, same group: resources joined
            Permission("example.com", ("nodes",), ("list",)),  # same verbs, other group: never joined
            Permission(verbs=("get",), non_resource_urls=("/version",)),
            Permission(verbs=("get",), non_resource_urls=("/apis/example.com/v1",)),
        ]
    )
    assert merged == {
        CLUSTER_WIDE: [
            Rule("", ("events", "nodes", "pods"), ("list",)),
            Rule("", ("services",), ("get",)),
            Rule("apps", ("deployments",), ("create", "get", "watch")),
            Rule("example.com", ("nodes",), ("list",)),
            Rule("", (), ("get",), ("/apis/example.com/v1", "/version")),
        ]
    }


class _FixedNamespaceCheck(Check):
    name = "fixed-namespace"
    description = "Reads a ConfigMap in kube-system."
    permissions: ClassVar[tuple[Permission, ...]] = (
        Permission("", ("configmaps",), ("get",), namespace="kube-system"),
        Permission("", ("nodes",), ("list",)),
    )


def test_a_fixed_namespace_gets_a_role_and_binding_there() -> None:
    documents = rbac_manifests(
        rbac_rules([_FixedNamespaceCheck]), ["fixed-namespace"], namespace="ops", service_account="sa"
    )
    kinds = [(d["kind"], d["metadata"].get("namespace")) for d in documents]
    assert kinds == [
        ("ServiceAccount", "ops"),
        ("ClusterRole", None),
        ("ClusterRoleBinding", None),
        ("Role", "kube-system"),
        ("RoleBinding", "kube-system"),
    ]
    role = documents[3]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
    assert documents[4]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sa"}
    assert documents[4]["subjects"] == [{"kind": "ServiceAccount", "name": "sa", "namespace": "ops"}]
    assert {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]} not in documents[1]["rules"]


def test_nothing_generated_carries_the_label_cleanup_deletes(capsys: pytest.CaptureFixture[str]) -> None:
    documents = list(yaml.safe_load_all(_cli(capsys, "rbac", "--all")[1]))
    for document in documents:
        assert "app.kubernetes.io/managed-by" not in document["metadata"].get("labels", {})


def test_the_engine_needs_its_namespaces_and_version_whatever_the_checks() -> None:
    rules = rbac_rules([_FixedNamespaceCheck])[CLUSTER_WIDE]
    assert Rule("", ("namespaces",), ("create", "delete", "get", "list", "watch")) in rules
    assert Rule("", (), ("get",), ("/version",)) in rules


def test_dry_run_shows_the_same_rules(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    for selection in (["--all"], ["cert-manager", "ingress"]):
        code, out, err = _cli(capsys, "run", *selection, "--dry-run", "--kubeconfig", str(kubeconfig))
        assert code == 0, err
        shown = out.split("\npermissions (", 1)[1].splitlines()[1:]
        assert shown[0] == "  ClusterRole"
        code, generated, _ = _cli(capsys, "rbac", *selection, "--format", "json")
        assert code == 0
        expected = [
            f"      nonResourceURLs {','.join(rule['nonResourceURLs'])}: {','.join(rule['verbs'])}"
            if "nonResourceURLs" in rule
            else f"      {rule['apiGroups'][0] or 'core'} {','.join(rule['resources'])}: {','.join(rule['verbs'])}"
            for rule in _cluster_role(json.loads(generated)["items"])["rules"]
        ]
        assert shown[1:] == expected


def test_list_json_shows_each_checks_declarations(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "list", "--json")
    assert code == 0
    checks = create_plugin_manager().checks
    for row in json.loads(out)["checks"]:
        declared = checks[row["name"]].permissions
        assert len(row["permissions"]) == len(declared)
        for shown, permission in zip(row["permissions"], declared, strict=True):
            if permission.non_resource_urls:
                assert shown == {"nonResourceURLs": list(permission.non_resource_urls), "verbs": list(permission.verbs)}
            else:
                assert (shown["apiGroup"], shown["resources"], shown["verbs"]) == (
                    permission.api_group,
                    list(permission.resources),
                    list(permission.verbs),
                )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown check 'nope'"),
        ([], "name the checks"),
        (["--all", "--format", "xml"], "'xml' is not one of yaml, json"),
        (["--all", "--namespace", "Ops_1"], "--namespace 'Ops_1' is not a namespace name"),
        (["--all", "--namespace", "a" * 64], "is not a namespace name"),
        (["--all", "--service-account", "Kibertas"], "--service-account 'Kibertas' is not a ServiceAccount name"),
        (["--all", "cert-manager"], "give check names or --all, not both"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = _cli(capsys, "rbac", *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err


@pytest.mark.parametrize(
    "make",
    [
        lambda: Permission("", ("pods",), ()),
        lambda: Permission("", (), ("get",)),
        lambda: Permission("", ("pods",), ("get",), non_resource_urls=("/version",)),
        lambda: Permission("apps", (), ("get",), non_resource_urls=("/version",)),
    ],
    ids=["no verbs", "no target", "both targets", "url with a group"],
)
def test_a_permission_that_says_nothing_clear_is_refused(make: Any) -> None:
    with pytest.raises(ValueError, match="Permission:"):
        make()
