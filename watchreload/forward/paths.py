"""What a forwarded path may name: a file inside the container directory it came with, and inside
a watched directory, after every symlink is followed. Anything else is rejected (and counted by
the caller)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from watchreload.forward.freshstat import fresh_stat
from watchreload.scan import Signature

Found = tuple[Path, Signature | None]  # the path as the scan names it, and its fresh signature


class ForwardedPaths:
    """Maps the paths of one message onto `root`. The resolved directories are kept for the
    message: a checkout names thousands of files in a few hundred directories, and each
    resolution costs a stat per path component (a round trip to a FUSE server)."""

    def __init__(self, root: str, watched_roots: Iterable[Path]) -> None:
        self.root = root
        self._real_root = os.path.realpath(root)
        self._watched = [(watched, os.path.realpath(watched)) for watched in watched_roots]
        self._real_dirs: dict[str, str] = {}

    def contained(self, relative: str) -> Path | None:
        """`root`/`relative` when it stays inside `root` and inside a watched root, with symlinks
        followed (a link that points out is refused); None when it does not.

        The path returned is spelled as the watched root spells it (what the scan reports), not
        resolved, so that a change arrives under the name the polling scan would give it.
        """
        found = self.found(relative)
        return None if found is None else found[0]

    def found(self, relative: str) -> Found | None:
        """`contained()`, with the file's signature from a stat that bypasses the mount's cache
        (freshstat.py; None when it is gone or not a regular file): a regular file, the common
        case, costs one stat for both."""
        if not relative or "\0" in relative or relative.startswith("/"):
            return None
        parts = PurePosixPath(relative).parts
        if ".." in parts or "." in parts:
            return None
        path = os.path.join(self.root, *parts)
        parent, name = os.path.split(path)
        real_parent = self._real_dirs.get(parent)
        if real_parent is None:
            real_parent = self._real_dirs[parent] = os.path.realpath(parent)
        resolved = os.path.join(real_parent, name)
        fresh = fresh_stat(resolved, follow_symlinks=False)
        if fresh is not None and fresh.is_symlink:
            resolved = os.path.realpath(resolved)
            fresh = fresh_stat(resolved)
        if not _inside(resolved, self._real_root):
            return None
        for watched, real_watched in self._watched:
            if _inside(path, os.fspath(watched)) and _inside(resolved, real_watched):
                return Path(path), None if fresh is None else fresh.signature
        return None


def contained_path(root: str, relative: str, watched_roots: Iterable[Path]) -> Path | None:
    """ForwardedPaths(root, watched_roots).contained(relative), for one path."""
    return ForwardedPaths(root, watched_roots).contained(relative)


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")
