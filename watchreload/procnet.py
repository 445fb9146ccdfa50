"""The listening TCP sockets of a process group, from /proc: readiness of a non-Python command.

Built on process.py's /proc helpers (process.py is at the package's 400-line cap): the sockets in
LISTEN state of /proc/net/tcp and tcp6, matched by inode against the `socket:[INODE]` links of
/proc/<pid>/fd of the group's live processes. Where there is no /proc, nothing is found.
"""

from __future__ import annotations

import ipaddress
import os

from watchreload.process import PROC, processes

Address = tuple[str, int]
_LISTEN = "0A"


def _decode_address(hex_address: str) -> Address:
    host_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(host_hex)
    # The kernel writes each 32-bit word of the address in host (little-endian here) order.
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    host = ipaddress.ip_address(packed)
    if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped is not None:
        return str(host.ipv4_mapped), int(port_hex, 16)
    return str(host), int(port_hex, 16)


def listening_inodes() -> dict[int, Address]:
    """Inode → address of every TCP socket in LISTEN state that this process can see."""
    found: dict[int, Address] = {}
    for table in ("tcp", "tcp6"):
        try:
            with open(f"{PROC}/net/{table}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN:
                try:
                    found[int(fields[9])] = _decode_address(fields[1])
                except ValueError:
                    continue
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        names = os.listdir(f"{PROC}/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"{PROC}/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def group_listening(pgid: int) -> Address | None:
    """An address a process of group `pgid` listens on (the lowest port), or None."""
    inodes: set[int] = set()
    for stat in processes():
        if stat.pgid == pgid and stat.live:
            inodes |= _socket_inodes(stat.pid)
    if not inodes:
        return None
    listening = listening_inodes()
    addresses = sorted((listening[i] for i in inodes if i in listening), key=lambda a: a[1])
    return addresses[0] if addresses else None
