"""A tiny inotify notifier (Linux, ctypes) that makes the staleness check one read().

`Inotify.watch(paths)` watches the directory of each path (the path itself when it is a
directory) and remembers which names in it matter: a file's own name, or, for a watched
directory such as site-packages, any entry but `__pycache__` and `*.pyc`. `changed()` reads
whatever events arrived, without blocking, and names the first path that matters. A watch that
cannot be added (ENOSPC: out of watches) is returned to the caller, which stats that path instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import sys
from collections.abc import Sequence

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = 0o2000000
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
_EVENT = struct.Struct("iIII")
_ANY = "*"  # every entry of the directory matters (but caches)


def available() -> bool:
    return sys.platform.startswith("linux")


class Inotify:
    """One inotify descriptor for the template's paths."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.fd: int = fd
        self._dirs: dict[int, tuple[str, set[str]]] = {}
        self._by_dir: dict[str, int] = {}

    def watch(self, paths: Sequence[str]) -> list[str]:
        """Watch `paths`; return those that could not be watched."""
        failed = []
        for path in paths:
            if os.path.isdir(path):
                directory, name = path, _ANY
            else:
                directory, name = os.path.split(path)
            if not self._add(directory, name):
                failed.append(path)
        return failed

    def _add(self, directory: str, name: str) -> bool:
        wd = self._by_dir.get(directory)
        if wd is None:
            wd = self._libc.inotify_add_watch(self.fd, os.fsencode(directory), MASK)
            if wd < 0:
                return False
            self._by_dir[directory] = wd
            self._dirs[wd] = (directory, set())
        self._dirs[wd][1].add(name)
        return True

    def changed(self) -> str | None:
        """The first path that matters among the events read now, or None."""
        reason = None
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return reason
            reason = reason or self._first_change(data)

    def _first_change(self, data: bytes) -> str | None:
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
            offset += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                return "too many changes under the template's files to tell them apart"
            reason = self._matters(wd, mask, os.fsdecode(raw.rstrip(b"\0")))
            if reason is not None:
                return reason
        return None

    def _matters(self, wd: int, mask: int, name: str) -> str | None:
        entry = self._dirs.get(wd)
        if entry is None:
            return None
        directory, names = entry
        if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED):
            return f"{directory} was removed or moved"
        if name in names:
            return f"{os.path.join(directory, name)} changed"
        if _ANY in names and name and name != "__pycache__" and not name.endswith(".pyc"):
            return f"{os.path.join(directory, name)} changed in {directory}"
        return None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
