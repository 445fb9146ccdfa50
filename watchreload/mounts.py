"""Which file system holds a path, and whether file events can be trusted there.

inotify (and so Watchman) only sees changes made through this kernel. On a bind mount from
Docker Desktop, a WSL drive, a VirtualBox shared folder or a network file system, the edits you
make on the other side (your editor on the host, another NFS client) usually send no event into
the container: an event-based watcher then silently misses every edit, while polling still sees
them. `get_reloader("auto")` asks `events_unreliable()` about each root before it picks Watchman.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path, PurePosixPath
from typing import NamedTuple

logger = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")

# File system type (as /proc/self/mountinfo names it) -> where the files really live. On each of
# these, a change made outside this kernel reaches an inotify watch here late, partly or never
# (Docker Desktop forwards some events; the others none), while polling sees it. Any other FUSE
# file system ("fuse" or "fuse.<name>") counts too: the kernel only sees the changes made through
# the mount, never those made behind it (in bindfs's source directory, on the sshfs server).
# "fuseblk" (ntfs-3g, exfat on a local disk) is not FUSE in this sense: every change goes through
# the mount. Anything else (ext4, btrfs, xfs, overlay, tmpfs: a Linux host's bind mount) is local.
UNRELIABLE_FILE_SYSTEMS: dict[str, str] = {
    "fuse.grpcfuse": "Docker Desktop",  # Docker Desktop's gRPC FUSE file sharing (macOS, Windows)
    "fakeowner": "Docker Desktop",  # Docker Desktop's VirtioFS file sharing, seen in a container
    "fuse.osxfs": "Docker for Mac",  # its file sharing before gRPC FUSE
    "virtiofs": "a virtual machine's shared folder",  # Podman machine, Lima, Colima, Docker VMs
    "9p": "a WSL 2 Windows drive or a virtual machine's shared folder",  # /mnt/c in WSL 2, QEMU
    "drvfs": "a WSL Windows drive",
    "vboxsf": "a VirtualBox shared folder",  # Vagrant, Docker Toolbox
    "nfs": "a network file system",
    "nfs4": "a network file system",
    "cifs": "an SMB share",
    "smb3": "an SMB share",
}
FUSE_ORIGIN = "a FUSE file system"


class Mount(NamedTuple):
    """One line of /proc/self/mountinfo, as far as we need it."""

    mount_point: str
    fs_type: str
    source: str


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    r"""Undo the kernel's octal escapes: `\040` space, `\011` tab, `\012` newline, `\134` `\`."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts in the text of a /proc/<pid>/mountinfo file, in its order (parents first).

    A line is `id parent major:minor root mount-point options [optional fields...] - type source
    super-options` (proc(5)); lines that do not have that shape are skipped.
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < separator + 3:
            continue
        mounts.append(
            Mount(
                mount_point=_unescape(fields[4]),
                fs_type=_unescape(fields[separator + 1]),
                source=_unescape(fields[separator + 2]),
            )
        )
    return mounts


def _holder(path: PurePosixPath, mounts: list[Mount]) -> Mount | None:
    best: Mount | None = None
    for mount in mounts:
        if not path.is_relative_to(mount.mount_point):
            continue
        if best is None or len(PurePosixPath(mount.mount_point).parts) >= len(
            PurePosixPath(best.mount_point).parts
        ):
            best = mount
    return best


def mount_of(resolved_path: str, mountinfo: str) -> Mount | None:
    """The mount that holds `resolved_path` (absolute, symlinks resolved) according to `mountinfo`:
    the one with the longest mount point that contains it, the last one listed when several are
    stacked on the same mount point."""
    return _holder(PurePosixPath(resolved_path), parse_mountinfo(mountinfo))


def mounts_in(resolved_path: str, mountinfo: str) -> list[Mount]:
    """The mount that holds `resolved_path`, then the mounts seen below it (a bind mount of `src`
    into a working directory that is not one), each once, in mountinfo's order."""
    path = PurePosixPath(resolved_path)
    mounts = parse_mountinfo(mountinfo)
    holder = _holder(path, mounts)
    found = [] if holder is None else [holder]
    for mount in mounts:
        mount_point = PurePosixPath(mount.mount_point)
        if mount_point != path and mount_point.is_relative_to(path):
            seen = _holder(mount_point, mounts)  # the top one of mounts stacked there
            if seen is not None and seen not in found:
                found.append(seen)
    return found


def _read_mountinfo() -> str | None:
    try:
        return os.fsdecode(MOUNTINFO.read_bytes())  # decoded as paths are, so that they compare
    except OSError as exc:  # not Linux (macOS has no /proc), or /proc is not mounted
        logger.debug("cannot read %s (%s); file system types are unknown", MOUNTINFO, exc)
        return None


def file_system_of(path: Path) -> str:
    """The type of the file system that holds `path` ("ext4", "fuse.grpcfuse"), or "" when it
    cannot be told (no /proc/self/mountinfo, as on macOS)."""
    mountinfo = _read_mountinfo()
    if mountinfo is None:
        return ""
    mount = mount_of(str(path.resolve()), mountinfo)
    return "" if mount is None else mount.fs_type


def unreliable_origin(fs_type: str) -> str | None:
    """Where the files of a file system of type `fs_type` live, when file events there may not
    arrive; None when they can be trusted."""
    if fs_type in UNRELIABLE_FILE_SYSTEMS:
        return UNRELIABLE_FILE_SYSTEMS[fs_type]
    if fs_type == "fuse" or fs_type.startswith("fuse."):
        return FUSE_ORIGIN
    return None


def events_unreliable(path: Path) -> str | None:
    """A short reason when `path`, or a mount below it, is on a file system where file events may
    not arrive, else None: "src is on a fuse.grpcfuse mount (Docker Desktop), where file events may
    not arrive"."""
    mountinfo = _read_mountinfo()
    if mountinfo is None:
        return None
    resolved = path.resolve()
    for mount in mounts_in(str(resolved), mountinfo):
        origin = unreliable_origin(mount.fs_type)
        if origin is not None:
            where = path if resolved.is_relative_to(mount.mount_point) else mount.mount_point
            return (
                f"{where} is on a {mount.fs_type} mount ({origin}), where file events may not "
                "arrive"
            )
    return None


__all__ = [
    "UNRELIABLE_FILE_SYSTEMS",
    "Mount",
    "events_unreliable",
    "file_system_of",
    "mount_of",
    "mounts_in",
    "parse_mountinfo",
    "unreliable_origin",
]
