"""A missing tool (kubectl, helm) skips the deploy tests with the reason, and fails them under CI."""

from __future__ import annotations

import pytest

from tests.deploy.conftest import unavailable


def test_unavailable_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no helm"):
        unavailable("no helm")


@pytest.mark.parametrize("value", ["true", "1"])
def test_unavailable_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="no helm"):
        unavailable("no helm")
