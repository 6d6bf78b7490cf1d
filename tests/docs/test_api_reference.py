"""docs/api.md tells the whole truth about the public API: every exported name is on it, and what it lists
(resources, parsers, option parameters, hooks, labels, the engine's permissions, context members,
result fields) exists as it says."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import re
from pathlib import Path

import pytest

import kibertas_async
import kibertas_async.testing
from kibertas_async import hookspecs
from kibertas_async.kube import resources

ROOT = Path(__file__).resolve().parents[2]
API = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _mentioned(name: str) -> bool:
    """``name`` in code type on the page (`` `name` ``, `` `name(...)` ``, `` `name[T]` ``, `` `name.x` ``,
    `` `@name` ``, `` `await name(...)` ``) or in one of its code blocks (the error tree)."""
    if re.search(rf"`(?:@|await )?{re.escape(name)}[`(\[.]", API):
        return True
    blocks = re.findall(r"^```\w*\n(.*?)^```", API, flags=re.MULTILINE | re.DOTALL)
    return any(re.search(rf"\b{re.escape(name)}\b", block) for block in blocks)


def _table(first_header: str) -> list[list[str]]:
    """The rows of the table whose first column is headed ``first_header``, as cells without backticks."""
    match = re.search(rf"^\| {re.escape(first_header)} \|.*\n\|[-| ]+\|\n((?:\|.*\n)+)", API, flags=re.MULTILINE)
    assert match is not None, f"no table headed {first_header!r}"
    return [
        [cell.strip().replace("`", "") for cell in line.strip().strip("|").split(" | ")]
        for line in match.group(1).splitlines()
    ]


@pytest.mark.parametrize("name", sorted(kibertas_async.__all__))
def test_every_name_of_the_flat_namespace_is_documented(name: str) -> None:
    assert _mentioned(name), f"kibertas_async.{name} is exported but docs/api.md does not mention it"


@pytest.mark.parametrize("name", sorted(kibertas_async.testing.__all__))
def test_every_name_of_the_testing_kit_is_documented(name: str) -> None:
    assert _mentioned(name), f"kibertas_async.testing.{name} is exported but docs/api.md does not mention it"


def test_the_testing_names_it_mentions_beyond_the_kit_namespace_exist() -> None:
    from kibertas_async.testing import plugin, runner

    for name in ("CheckRunner", "RunResult", "BackgroundRun", "leftovers", "find_leftovers"):
        assert hasattr(runner, name) and _mentioned(name), name
    assert callable(runner.option_environment_names)
    assert hasattr(plugin, "NothingLeft")
    from kibertas_async.testing.waiting import eventually
    from kibertas_async.testing.workloads import daemonset_on_no_node

    assert _mentioned(daemonset_on_no_node.__name__) and _mentioned(eventually.__name__)


def _kit_fixtures() -> list[str]:
    """The fixtures the kit's pytest plugin defines (what ``@pytest.fixture`` made, by its marker)."""
    from kibertas_async.testing import plugin

    return sorted(
        name
        for name, value in vars(plugin).items()
        if type(value).__name__ == "FixtureFunctionDefinition" or hasattr(value, "_pytestfixturefunction")
    )


def test_every_fixture_of_the_kit_is_in_the_fixture_table() -> None:
    documented = [row[0] for row in _table("fixture")]
    assert {"sandbox", "sandbox_cluster", "check_runner", "nothing_left"} <= set(documented)
    assert sorted(documented) == _kit_fixtures()


def _hook_names() -> list[str]:
    """Every hookspec: the contract's, and the sandbox's own module of them where there is one."""
    modules = [hookspecs]
    with contextlib.suppress(ModuleNotFoundError):
        modules.append(importlib.import_module("kibertas_async.sandbox.hookspecs"))
    return sorted(
        {
            name
            for module in modules
            for name, _ in inspect.getmembers(module, inspect.isfunction)
            if name.startswith("kibertas_async_")
        }
    )


@pytest.mark.parametrize("hook", _hook_names())
def test_every_hook_is_in_the_hook_table(hook: str) -> None:
    assert f"| `{hook}(" in API


def test_the_resource_table_is_every_ready_made_resource_as_it_is() -> None:
    documented = {row[0]: row[1:] for row in _table("constant")}
    defined = {name: value for name, value in vars(resources).items() if isinstance(value, resources.Resource)}
    assert sorted(documented) == sorted(defined)
    for name, (kind, api_version, namespaced) in documented.items():
        resource = defined[name]
        assert name in kibertas_async.__all__ and getattr(kibertas_async, name) is resource, name
        assert (kind, api_version, namespaced) == (
            resource.kind,
            resource.api_version,
            "yes" if resource.namespaced else "no",
        ), name


def test_the_documented_parsers_exist_and_read_what_the_table_says() -> None:
    from kibertas_async import options

    names = [row[0].split("(")[0].split(" ")[0] for row in _table("parser")]  # "optional(parse)", "str (the default)"
    assert names == [
        "str",
        "parse_bool",
        "parse_positive_int",
        "parse_duration",
        "parse_list",
        "parse_mapping",
        "optional",
    ]
    for name in names[1:]:
        assert getattr(kibertas_async, name) is getattr(options, name)
    assert [options.parse_bool(text) for text in ("YES", "off", "1", "")] == [True, False, True, False]
    assert options.parse_positive_int("3") == 3
    assert [options.parse_duration(text) for text in ("90", "90s", "1.5m", "2h", "500ms")] == [
        90.0,
        90.0,
        90.0,
        7200.0,
        0.5,
    ]
    assert options.format_duration(90.0) == "90s" and options.format_duration(300.0) == "5m"
    assert options.format_duration(float("inf")) == "unlimited"
    assert options.parse_list("a, ,b") == ("a", "b")
    assert options.parse_mapping("a=1,b=2") == options.parse_mapping('{"a": "1", "b": 2}') == {"a": "1", "b": "2"}
    assert options.optional(options.parse_duration)(" ") is None
    for parse, bad in (
        (options.parse_bool, "maybe"),
        (options.parse_positive_int, "0"),
        (options.parse_duration, "0s"),
    ):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse(bad)


def test_the_option_table_has_every_parameter_and_a_bad_name_is_a_value_error() -> None:
    from kibertas_async import Option

    documented = [row[0] for row in _table("parameter")]
    assert documented == [field.name for field in dataclasses.fields(Option)]
    assert 'parse=str, env=(), per_cluster=True, secret=False, metavar="VALUE",\nrequires=()' in API
    defaults = {field.name: field.default for field in dataclasses.fields(Option)}
    assert (defaults["parse"], defaults["env"], defaults["per_cluster"], defaults["secret"]) == (str, (), True, False)
    assert (defaults["metavar"], defaults["requires"]) == ("VALUE", ())
    with pytest.raises(ValueError, match="lower-case words"):
        Option[str]("Bad_Name", "help", default="")
    assert Option[str]("my-option", "help", default="").env_names[0] == "KIBERTAS_ASYNC_MY_OPTION"


def test_a_parsers_value_error_becomes_the_documented_one_line_usage_error() -> None:
    from kibertas_async import Option, UsageError, parse_positive_int
    from kibertas_async.options.config_file import ConfigFile
    from kibertas_async.options.resolution import resolve_options

    count = Option[int]("my-count", "help", default=1, parse=parse_positive_int)
    with pytest.raises(UsageError) as raised:
        resolve_options([count], flags={}, environ={"KIBERTAS_ASYNC_MY_COUNT": "0"}, config=ConfigFile(), cluster=None)
    source = "environment variable KIBERTAS_ASYNC_MY_COUNT"
    assert str(raised.value) == f"invalid value '0' for --my-count (from {source}): '0' must be at least 1"
    assert "invalid value '<text>' for --<name> (from <source>): <your message>" in API


def test_the_labels_and_the_create_retry_are_the_contexts() -> None:
    from kibertas_async.checks import context

    rows = {row[0]: row[1] for row in _table("label")}
    assert rows == {
        context.MANAGED_BY_LABEL: context.MANAGED_BY,
        context.RUN_ID_LABEL: "the run's id (--run-id, or generated)",
        context.CHECK_LABEL: "the check's name",
    }
    assert f"`{context.OBJECT_ID_LABEL}`" in API
    assert context.CREATE_RETRY_SECONDS == 30.0 and "up to 30 seconds (`CREATE_RETRY_SECONDS`)" in API


def test_the_engine_permissions_are_what_the_page_says() -> None:
    from kibertas_async.rbac import ENGINE_PERMISSIONS

    granted = {(p.api_group, p.resources, p.verbs, p.non_resource_urls) for p in ENGINE_PERMISSIONS}
    assert granted == {
        ("", ("namespaces",), ("create", "delete", "get", "list", "watch"), ()),
        ("", (), ("get",), ("/version",)),
        ("", ("events", "pods"), ("list",), ()),
        ("", ("pods/log",), ("get",), ()),
    }
    assert all(p.namespace is None for p in ENGINE_PERMISSIONS)


def test_every_ctx_member_on_the_page_exists() -> None:
    from kibertas_async import CheckContext, OptionValues
    from kibertas_async.checks import CleanupGuard, CleanupStack
    from kibertas_async.events import get_logger
    from kibertas_async.kube import ClusterTarget

    ctx = CheckContext(
        run_id="r",
        check_name="c",
        cluster=ClusterTarget("x"),
        options=OptionValues({}, {}),
        log=get_logger(),
        cleanup=CleanupStack(keep=False, action_timeout=1.0, guard=CleanupGuard()),
        kube=None,
    )
    members = set(re.findall(r"ctx\.(\w+)", API))
    assert {"step", "fail", "skip", "namespace", "create", "wait_for", "poll", "kube", "cleanup"} <= members
    for member in members - {"kube"}:  # ctx.kube raises RuntimeError without a client: as documented
        assert hasattr(ctx, member), member
    with pytest.raises(RuntimeError, match="needs_kubernetes = False"):
        _ = ctx.kube


def test_the_result_fields_on_the_page_exist() -> None:
    from kibertas_async import CheckResult, CleanupResult, RunInfo, RunReport, StepResult

    for cls, names in (
        (CheckResult, "check cluster outcome step reason facts steps cleanup api_requests diagnostics"),
        (StepResult, "name outcome duration detail"),
        (CleanupResult, "description status detail"),
        (RunReport, "run_id clusters checks results plugin_problems kubernetes_versions comparison"),
        (RunInfo, "run_id started_at clusters checks"),
    ):
        fields = {field.name for field in dataclasses.fields(cls)}
        assert set(names.split()) <= fields, cls.__name__


def test_the_readme_plugin_section_links_the_reference() -> None:
    section = README.split("## Writing a plugin", 1)[1].split("\n## ", 1)[0]
    assert "(docs/api.md)" in section
