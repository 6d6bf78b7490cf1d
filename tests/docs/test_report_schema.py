"""docs/report-schema.md against the reports it documents: every field of its examples is in a real report
of that shape and every field of a real report is in the examples, at every level; every field its tables
explain exists; the version it names is the one written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import RunCli

DOC = Path(__file__).resolve().parents[2] / "docs" / "report-schema.md"


def doc_examples() -> tuple[dict[str, Any], dict[str, Any]]:
    """The report example and the comparison example (a ``"comparison": {...}`` fragment)."""
    report, comparison = re.findall(r"```json\n(.*?)\n```", DOC.read_text(encoding="utf-8"), re.S)
    return json.loads(report), json.loads("{" + comparison + "}")["comparison"]


MAPS = {"results[].facts", "kubernetes_versions", "counts"}
"""Objects whose keys are data (fact names, cluster names, outcomes), not fields of the schema."""


def shape(value: Any, path: str = "") -> set[str]:
    """Every key path of ``value``: ``results[].steps[].name`` and so on (lists by their first item)."""
    paths: set[str] = set()
    if isinstance(value, dict) and path not in MAPS:
        for key, item in value.items():
            here = f"{path}.{key}" if path else key
            paths.add(here)
            paths |= shape(item, here)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        paths |= shape(value[0], path + "[]")
    return paths


def documented_fields() -> set[str]:
    """The first column of the doc's field tables, each name split on ``,`` (``old``, ``new``)."""
    fields: set[str] = set()
    for row in re.findall(r"^\| `([^|]+?)` \|", DOC.read_text(encoding="utf-8"), re.M):
        fields |= {name.strip(" `") for name in row.split(",")}
    return fields


def real_reports(run_cli: RunCli, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A real run report (a passing, a failing and an erroring check on two clusters, compared), and the
    comparison ``compare`` prints for two saved reports whose add-on versions differ."""
    path = tmp_path / "report.json"
    checks = ("sleeper-1", "failing", "crashing")
    run = run_cli("run", *checks, "--clusters", "alpha,beta", "--compare", "alpha,beta", "--report-json", str(path))
    assert run.code == 1, run.err
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    sides = []
    for cluster, version in (("alpha", "v1.0.0"), ("beta", "v1.1.0")):
        side = json.loads(path.read_text(encoding="utf-8"))
        side["results"] = [result for result in side["results"] if result["cluster"] == cluster]
        side["clusters"] = [cluster]
        for result in side["results"]:
            result["facts"]["example-addon version"] = version
            if cluster == "beta" and result["check"] == "sleeper-1":
                result["outcome"], result["step"], result["reason"] = "failed", "sleep", "broken on the new side"
        side_path = tmp_path / f"{cluster}.json"
        side_path.write_text(json.dumps(side), encoding="utf-8")
        sides.append(str(side_path))
    compared = run_cli("compare", *sides, "--json")
    assert compared.code == 1, compared.err  # sleeper-1 regressed on the new side
    comparison: dict[str, Any] = json.loads(compared.out)
    return report, comparison


def test_the_report_example_has_exactly_the_fields_of_a_real_report(run_cli: RunCli, tmp_path: Path) -> None:
    example, example_comparison = doc_examples()
    report, comparison = real_reports(run_cli, tmp_path)
    assert example["schema"] == report["schema"] and example["schema_version"] == report["schema_version"]
    assert f"version **{report['schema_version']}**" in DOC.read_text(encoding="utf-8")
    real = shape({**report, "comparison": None}) | shape(comparison, "comparison")
    documented = shape({**example, "comparison": None}) | shape(example_comparison, "comparison")
    # Diagnostics need a cluster to look at: the synthetic checks have none, so their items come from the
    # example alone (their fields are the Diagnostic dataclass's, tested by the diagnostics suite).
    diagnostics = {path for path in documented if path.startswith("results[].diagnostics[].")}
    assert sorted(documented - real - diagnostics) == [], "documented, not in a real report"
    assert sorted(real - documented) == [], "in a real report, not documented"


def test_every_field_the_tables_explain_is_in_the_examples() -> None:
    example, example_comparison = doc_examples()
    leaves = {path.rsplit(".", 1)[-1] for path in shape(example) | shape(example_comparison)}
    paths = shape(example) | shape(example_comparison) | {f"checks[].{p}" for p in shape(example_comparison)}
    for field in documented_fields():
        assert field in paths or field in leaves or field.rstrip("[]") in paths, field
