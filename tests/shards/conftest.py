"""Fixtures of the sharding tests: six sandbox clusters without add-ons, for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kibertas_async.sandbox.build import binaries_for
from kibertas_async.sandbox.runner import Sandbox, SandboxConfig
from kibertas_async.sandbox.versions import DEFAULT_KUBERNETES_VERSION
from kibertas_async.testing import ci_requires_sandbox
from tests.deploy.conftest import helm  # noqa: F401  (the fixture: helm from scripts/helm, built once)

CLUSTERS = tuple(f"shard-{index}" for index in range(1, 7))


@pytest.fixture(scope="session")
def six_clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    missing = binaries_for(DEFAULT_KUBERNETES_VERSION).missing()
    if missing:
        message = f"sandbox binaries missing ({', '.join(path.name for path in missing)}): kibertas-async sandbox build"
        if ci_requires_sandbox():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    state = tmp_path_factory.mktemp("six-clusters")
    config = SandboxConfig(cluster_names=CLUSTERS, state_dir=state, kubeconfig=state / "kubeconfig", addons=())
    started = Sandbox.start(config, die_with_parent=True)
    try:
        yield started
    finally:
        started.down()


@pytest.fixture(scope="session")
def six_kubeconfig(six_clusters: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sandbox's kubeconfig without its per-context settings extension: these checks need no add-on
    settings, and a sandbox without add-ons has none to name."""
    document = yaml.safe_load(six_clusters.kubeconfig.read_text())
    for context in document["contexts"]:
        context["context"].pop("extensions", None)
    path = tmp_path_factory.mktemp("kubeconfig") / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path
