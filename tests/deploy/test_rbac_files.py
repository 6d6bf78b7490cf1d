"""The RBAC in deploy/ is the generator's output, byte for byte: a new permission means regenerating it
(docs/deploy.md, "RBAC")."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import BASE, CHART, CLI, RBAC_COMMAND

REGENERATE = (
    "regenerate with: for f in deploy/base/rbac.yaml deploy/helm/kibertas-async/files/rbac.yaml; "
    f"do .venv/bin/kibertas-async {' '.join(RBAC_COMMAND)} > $f; done"
)


@pytest.fixture(scope="module")
def generated() -> bytes:
    return subprocess.run([str(CLI), *RBAC_COMMAND], capture_output=True, check=True, timeout=120).stdout


@pytest.mark.parametrize("path", [BASE / "rbac.yaml", CHART / "files" / "rbac.yaml"], ids=["kustomize", "helm"])
def test_rbac_file_is_the_generated_output(path: Path, generated: bytes) -> None:
    command = f"kibertas-async {' '.join(RBAC_COMMAND)}"
    assert path.read_bytes() == generated, f"{path} differs from `{command}`; {REGENERATE}"
