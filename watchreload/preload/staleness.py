"""Is the template stale? `Fingerprint` is taken when it is built; `changed()` names what moved.

What makes a template stale: a file it loaded, a site-packages or standard library directory
(`pip install`, upgrade and uninstall add or remove entries there), a `.pth` file, the interpreter
and `pyvenv.cfg`, the environment, and the project's lock and build files. Never the watched
roots: the template holds none of their modules.

The signature of a path is `(st_mtime_ns, st_ctime_ns, st_size, st_ino)`, or None while it does
not exist (so that creating `uv.lock` counts). On Linux, `changed()` reads an inotify descriptor
on the directories of those paths (inotify.py), one read() whatever the number of files; it
re-stats every path only where inotify is missing or a watch could not be added. The template
imports this module too (standard library only): it takes the signatures of what it loaded.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the template may run on a Python that can't subscript tuple at runtime
    Signature = tuple[int, int, int, int]

# Files of a project that pin or build its dependencies (relative to a project directory).
LOCK_FILES = (
    "pyproject.toml",
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "Pipfile",
    "setup.cfg",
    "setup.py",
    ".python-version",
)
LOCK_PATTERNS = ("requirements*.txt",)
# Changes in the environment that every restart brings: not a reason to rebuild.
VOLATILE_ENV = ("WATCHRELOAD_CHANGES", "WATCHRELOAD_CHANGES_FILE")


def signature(path: str) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)


def signatures(paths: Iterable[str]) -> list[Signature | None]:
    return [signature(p) for p in paths]


def environment_paths(stable_roots: Iterable[str]) -> list[str]:
    """The template's side: stable roots, their `.pth` files, the interpreter, `pyvenv.cfg`."""
    paths: list[str] = []
    for root in stable_roots:
        paths.append(root)
        try:
            paths.extend(
                os.path.join(root, n) for n in sorted(os.listdir(root)) if n.endswith(".pth")
            )
        except OSError:
            continue
    paths += [sys.executable, os.path.realpath(sys.executable)]
    paths.append(os.path.join(sys.prefix, "pyvenv.cfg"))
    return paths


def lock_files(project_dirs: Iterable[str]) -> list[str]:
    """The lock and build files of the project directories, present or not (globs: present)."""
    paths: list[str] = []
    for directory in project_dirs:
        paths.extend(os.path.join(directory, name) for name in LOCK_FILES)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for pattern in LOCK_PATTERNS:
            paths.extend(os.path.join(directory, n) for n in fnmatch.filter(names, pattern))
    return paths


def stable_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in VOLATILE_ENV}


class Notifier(Protocol):
    """What `Fingerprint` needs of a change notifier (inotify.py's `Inotify`)."""

    def watch(self, paths: Sequence[str]) -> list[str]:
        """Watch `paths`; return those that could not be watched."""

    def changed(self) -> str | None: ...

    def close(self) -> None: ...


class Fingerprint:
    """Paths and their signatures, and the environment, as they were when the template was built."""

    def __init__(self, env: Mapping[str, str], notifier: Notifier | None = None) -> None:
        self.env = stable_env(env)
        self._paths: list[str] = []
        self._signatures: list[Signature | None] = []
        self._kinds: list[str] = []
        self._notifier = notifier
        self._polled: list[int] = []  # indexes re-stated on every check
        self._reason: str | None = None

    def add(
        self, kind: str, paths: Sequence[str], taken: Sequence[Signature | None] | None = None
    ) -> None:
        """Remember `paths` (of `kind`, for the message) with their signatures (`taken`: as of
        an earlier moment, such as when the template loaded them); watch them from now on."""
        start = len(self._paths)
        self._paths.extend(paths)
        self._signatures.extend(signatures(paths) if taken is None else taken)
        self._kinds.extend([kind] * len(paths))
        unwatched = set(paths)
        if self._notifier is not None:
            unwatched = set(self._notifier.watch(paths))
        self._polled.extend(
            i for i in range(start, len(self._paths)) if self._paths[i] in unwatched
        )
        if taken is not None:  # what changed before the watch began
            self._reason = self._reason or self._compare(range(start, len(self._paths)))

    def __len__(self) -> int:
        return len(self._paths)

    def _compare(self, indexes: Iterable[int]) -> str | None:
        paths, taken = self._paths, self._signatures
        for i in indexes:
            if signature(paths[i]) != taken[i]:
                return f"{self._kinds[i]} {paths[i]} changed"
        return None

    def changed(self, env: Mapping[str, str] | None = None, full: bool = False) -> str | None:
        """Why the template is stale now, or None. `full` re-stats every path."""
        if self._reason is None and self._notifier is not None:
            self._reason = self._notifier.changed()
        if self._reason is None:
            indexes = range(len(self._paths)) if full else self._polled
            self._reason = self._compare(indexes)
        if self._reason is not None:
            return self._reason
        if env is not None:
            return self.env_changed(env)
        return None

    def env_changed(self, env: Mapping[str, str]) -> str | None:
        now = stable_env(env)
        if now == self.env:
            return None
        names = sorted(k for k in now.keys() | self.env.keys() if now.get(k) != self.env.get(k))
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return f"the environment changed ({shown})"

    def close(self) -> None:
        if self._notifier is not None:
            self._notifier.close()
