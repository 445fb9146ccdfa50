"""What a forwarded path may name: a file inside the container directory it came with, after
every symlink is followed. Anything else is rejected (and counted by the caller)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath


def contained_path(root: str, relative: str, watched_roots: Iterable[Path]) -> Path | None:
    """`root`/`relative` when it stays inside `root` and inside one of `watched_roots`, with
    symlinks followed (a link that points out is refused); None when it does not.

    The path returned is spelled as the watched root spells it (what the scan reports), not
    resolved, so that a change arrives under the name the polling scan would give it.
    """
    if not relative or "\0" in relative or relative.startswith("/"):
        return None
    parts = PurePosixPath(relative).parts
    if ".." in parts or "." in parts:
        return None
    path = Path(root, *parts)
    resolved = os.path.realpath(path)
    if not _inside(resolved, os.path.realpath(root)):
        return None
    for watched in watched_roots:
        if path.is_relative_to(watched) and _inside(resolved, os.path.realpath(watched)):
            return path
    return None


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")
