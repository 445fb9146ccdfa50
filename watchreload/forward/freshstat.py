"""stat() that asks the file system itself, not the kernel's cache of it.

A FUSE or virtiofs mount caches attributes and names for a second or so (FUSE's attr_timeout
and entry_timeout). A host edit reaches the container's kernel by no syscall, so for that long
`stat` there still gives the old size and mtime, and a deleted file still exists; a program
restarted at once may even read the file cut at the old size. `statx(AT_STATX_FORCE_SYNC)`
makes FUSE (and NFS) fetch the attributes from the other side and refreshes the cache for
every later reader. Python has no os.statx before 3.15, hence ctypes; where the call is missing
(not Linux, an old libc) this is os.stat.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat as stat_module
from typing import NamedTuple

from watchreload.scan import Signature

AT_FDCWD = -100
AT_STATX_FORCE_SYNC = 0x2000
AT_SYMLINK_NOFOLLOW = 0x100
STATX_BASIC_STATS = 0x07FF


class _Timestamp(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_uint32), ("_r", ctypes.c_int32)]


class _Statx(ctypes.Structure):
    """struct statx (linux/stat.h), 256 bytes."""

    _fields_ = [
        ("stx_mask", ctypes.c_uint32),
        ("stx_blksize", ctypes.c_uint32),
        ("stx_attributes", ctypes.c_uint64),
        ("stx_nlink", ctypes.c_uint32),
        ("stx_uid", ctypes.c_uint32),
        ("stx_gid", ctypes.c_uint32),
        ("stx_mode", ctypes.c_uint16),
        ("_spare0", ctypes.c_uint16),
        ("stx_ino", ctypes.c_uint64),
        ("stx_size", ctypes.c_uint64),
        ("stx_blocks", ctypes.c_uint64),
        ("stx_attributes_mask", ctypes.c_uint64),
        ("stx_atime", _Timestamp),
        ("stx_btime", _Timestamp),
        ("stx_ctime", _Timestamp),
        ("stx_mtime", _Timestamp),
        ("_rest", ctypes.c_uint64 * 16),
    ]


def _libc_statx() -> object | None:
    try:
        return ctypes.CDLL(None, use_errno=True).statx
    except (AttributeError, OSError):
        return None


_STATX = _libc_statx()


class FreshStat(NamedTuple):
    is_symlink: bool
    signature: Signature | None  # of a regular file; None for anything else


def fresh_stat(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> FreshStat | None:
    """What the file system says `path` is now; None when it does not exist."""
    if _STATX is None:
        return _cached_stat(path, follow_symlinks)
    buffer = _Statx()
    flags = AT_STATX_FORCE_SYNC | (0 if follow_symlinks else AT_SYMLINK_NOFOLLOW)
    result = _STATX(  # type: ignore[operator]
        AT_FDCWD, os.fsencode(path), flags, STATX_BASIC_STATS, ctypes.byref(buffer)
    )
    if result != 0:
        if ctypes.get_errno() == errno.ENOSYS:  # a kernel without statx (before 4.11)
            return _cached_stat(path, follow_symlinks)
        return None
    if not stat_module.S_ISREG(buffer.stx_mode):
        return FreshStat(stat_module.S_ISLNK(buffer.stx_mode), None)
    mtime_ns = buffer.stx_mtime.tv_sec * 1_000_000_000 + buffer.stx_mtime.tv_nsec
    return FreshStat(False, (mtime_ns, buffer.stx_size, buffer.stx_ino))


def fresh_signature(path: str | os.PathLike[str]) -> Signature | None:
    """The (mtime_ns, size, inode) of the regular file `path` (symlinks followed) as the file
    system says it is now; None when it does not exist or is not a regular file."""
    found = fresh_stat(path)
    return None if found is None else found.signature


def _cached_stat(path: str | os.PathLike[str], follow_symlinks: bool) -> FreshStat | None:
    try:
        st = os.stat(path, follow_symlinks=follow_symlinks)
    except OSError:
        return None
    if not stat_module.S_ISREG(st.st_mode):
        return FreshStat(stat_module.S_ISLNK(st.st_mode), None)
    return FreshStat(False, (st.st_mtime_ns, st.st_size, st.st_ino))
