"""``connect()`` without a cluster: an address that accepts connections but never answers."""

from __future__ import annotations

import gc
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from kibertas_async.kube import ClusterTarget, ClusterUnreachable, connect


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 whose connections complete (the kernel's backlog) but never get an answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # never accept()ed: requests are sent and wait, as to a frozen server
        yield int(listener.getsockname()[1])


def _target(tmp_path: Path, port: int) -> ClusterTarget:
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(
        f"""
apiVersion: v1
kind: Config
current-context: silent
clusters:
- name: silent
  cluster: {{server: "http://127.0.0.1:{port}"}}
contexts:
- name: silent
  context: {{cluster: silent, user: anonymous}}
users:
- name: anonymous
  user: {{}}
""",
        encoding="utf-8",
    )
    return ClusterTarget("silent", context="silent", kubeconfig=str(kubeconfig))


def _unclosed_sessions(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and "Unclosed" in str(w.message)]


@pytest.mark.anyio
async def test_connect_cancelled_while_version_is_in_flight_closes_its_client(
    silent_server: int, tmp_path: Path
) -> None:
    target = _target(tmp_path, silent_server)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # The caller's deadline (a signal would do the same) cancels connect() mid-request, long before
        # its own timeout: nothing answers GET /version.
        with anyio.move_on_after(0.5) as deadline:
            await connect(target, timeout=60)
        gc.collect()  # an abandoned aiohttp session warns when it is collected
    assert deadline.cancelled_caught
    assert _unclosed_sessions(caught) == []


@pytest.mark.anyio
async def test_connect_timing_out_is_unreachable_and_closes_its_client(silent_server: int, tmp_path: Path) -> None:
    target = _target(tmp_path, silent_server)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ClusterUnreachable, match=r"did not answer in 0\.5s"):
            await connect(target, timeout=0.5)
        gc.collect()
    assert _unclosed_sessions(caught) == []
