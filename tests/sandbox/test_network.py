"""Every socket a sandbox process listens on is on the loopback network."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from kibertas_async.sandbox.runner import Sandbox

TCP_LISTEN = "0A"


def listening_addresses(pids: list[int]) -> dict[int, list[str]]:
    """TCP listening addresses (``ip:port``) of each process, from /proc/PID/fd and /proc/net/tcp{,6}."""
    inode_owner = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except FileNotFoundError:  # closed between listing and reading: not a listener we could miss
                continue
            if target.startswith("socket:["):
                inode_owner[target[len("socket:[") : -1]] = pid
    found: dict[int, list[str]] = {pid: [] for pid in pids}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == TCP_LISTEN and inode in inode_owner:
                found[inode_owner[inode]].append(decode_address(local))
    return found


def decode_address(hex_address: str) -> str:
    """``0100007F:1F90`` → ``127.0.0.1:8080`` (the kernel writes 32-bit words in host byte order)."""
    hex_ip, hex_port = hex_address.split(":")
    words = [bytes.fromhex(hex_ip[i : i + 8])[::-1] for i in range(0, len(hex_ip), 8)]
    return f"{ipaddress.ip_address(b''.join(words))}:{int(hex_port, 16)}"


def test_sandbox_listens_on_loopback_only(sandbox: Sandbox) -> None:
    pids = [process.pid for process in sandbox.processes() if process.pid is not None]
    addresses = listening_addresses(pids)
    everything = [address for found in addresses.values() for address in found]
    assert len(everything) >= 2 + len(sandbox.clusters)  # etcd client and peer, one per API server
    for address in everything:
        ip = ipaddress.ip_address(address.rpartition(":")[0])
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        assert (mapped or ip).is_loopback, f"a sandbox process listens on {address}"
