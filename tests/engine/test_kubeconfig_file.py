"""A kubeconfig is parsed once per content, and a changed file is parsed again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kibertas_async.clusters.kubeconfig_file import load_kubeconfig_document
from kibertas_async.clusters.selection import read_kubeconfig
from kibertas_async.errors import UsageError


def test_the_same_file_is_parsed_once_and_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("contexts:\n- name: one\n  context: {cluster: one}\n", encoding="utf-8")
    first = load_kubeconfig_document(path)
    assert load_kubeconfig_document(path) is first
    path.write_text("contexts:\n- name: two\n  context: {cluster: two}\n", encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a different modification time even within the clock's resolution
    assert load_kubeconfig_document(path)["contexts"][0]["name"] == "two"


def test_a_kubeconfig_that_is_not_text_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(UsageError, match="is not valid YAML"):
        read_kubeconfig([path], required=True)
