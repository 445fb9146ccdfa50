"""The package's reader of /proc for processes and their sockets.

Processes: `read_stat` (/proc/<pid>/stat), `processes()`, `parent_of`, `command_line` (both fall
back on `ps` where there is no /proc), `pid_exists` and `group_alive`. Sockets: `group_listening`,
the TCP sockets in LISTEN state of /proc/net/tcp and tcp6 matched by inode against the
`socket:[INODE]` links of /proc/<pid>/fd of a group's live processes, for the ready line of a
non-Python command; where there is no /proc, nothing is found.

The tests and the benchmarks read /proc on their own on purpose: a leak check must not rely on the
code it checks.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

PROC = "/proc"


# -- processes --------------------------------------------------------------------------------


class ProcStat(NamedTuple):
    """The fields of /proc/<pid>/stat that watchreload uses."""

    pid: int
    state: str
    ppid: int
    pgid: int
    sid: int

    @property
    def live(self) -> bool:
        """False for a zombie (or a dead task): it can't be killed, only reaped."""
        return self.state not in ("Z", "X")


def read_stat(pid: int | str) -> ProcStat | None:
    """`pid`'s /proc/<pid>/stat, or None when it is gone or there is no /proc."""
    try:
        with open(f"{PROC}/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name, in parentheses, may contain spaces and parentheses: split after the last.
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return ProcStat(int(pid), fields[0], int(fields[1]), int(fields[2]), int(fields[3]))
    except (IndexError, ValueError):
        return None


def processes() -> Iterator[ProcStat]:
    """Every process /proc lists (none where there is no /proc)."""
    try:
        names = os.listdir(PROC)
    except OSError:
        return
    for name in names:
        if name.isdigit():
            stat = read_stat(name)
            if stat is not None:
                yield stat


def _ps(pid: int, field: str) -> str:
    """One `ps` column for `pid` (where there is no /proc); "" when it is gone."""
    try:
        result = subprocess.run(
            ["ps", "-p", str(pid), "-o", f"{field}="], capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return result.stdout.strip()


def parent_of(pid: int) -> int | None:
    stat = read_stat(pid)
    if stat is not None:
        return stat.ppid
    try:
        return int(_ps(pid, "ppid"))
    except ValueError:
        return None


def command_line(pid: int) -> list[str]:
    """The arguments `pid` runs with; [] when it is gone."""
    path = Path(PROC, str(pid), "cmdline")
    if not path.exists():
        return _ps(pid, "command").split()
    try:
        return [os.fsdecode(arg) for arg in path.read_bytes().split(b"\0") if arg]
    except OSError:
        return []


def pid_exists(pid: int) -> bool:
    """True while `pid` exists (a zombie too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_exists(pgid: int) -> bool:
    """True while the process group has a member (a zombie too)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process is in the group."""
    if not group_exists(pgid):
        return False
    if not os.path.isdir(PROC):
        return True  # a zombie can't be told from a live process here
    return any(stat.pgid == pgid and stat.live for stat in processes())


# -- listening sockets ------------------------------------------------------------------------


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


def signal_pending(pid: int) -> bool:
    """True when /proc shows a signal pending for `pid` or it is already a zombie.

    Also True where there is no /proc, so that the caller then waits its bounded time.
    """
    try:
        status = Path(PROC, str(pid), "status").read_text()
    except FileNotFoundError:
        return not Path(PROC, "self").exists()
    except OSError:
        return True
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("State", "").strip()[:1] in ("Z", "X"):
        return True
    return any(int(fields.get(name, "0").strip() or "0", 16) for name in ("SigPnd", "ShdPnd"))


def catches_signal(pid: int, signum: int) -> bool:
    """True when /proc shows that `pid` has a handler for `signum` (SigCgt); False without /proc."""
    try:
        status = Path(PROC, str(pid), "status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split(":", 1)[1].strip() or "0", 16) >> (signum - 1) & 1)
    return False
