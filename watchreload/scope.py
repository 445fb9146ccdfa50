"""Which changes restart a Python command, given what it imported (`scope = "imports"`).

Pure: a ChangeSet and what the agent reported for the current start in, the changes that restart
and those dropped out. A change restarts the child when:

- it is not a `.py` file (it matched another glob: templates, `.mo` files, config);
- nothing has been reported yet for this start (the child is still starting, or crashed before
  its first report): an edit is never lost;
- it is a module some process of the child imported, or one that failed to import (fixing the
  SyntaxError restarts);
- it is a `.py` file added or deleted in a directory that holds an imported module (Django's
  autodiscovery of a new `admin.py`, a new plugin module).

Anything else, an edit to a module nobody imported, is dropped. `outside_modules()` lists the
imported modules that the watched roots do not cover and that are not part of an installation
(the standard library, site-packages): an editable install of a sibling package, a directory on
PYTHONPATH. The supervisor watches those files too (`watch_file`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from watchreload.changes import Change, ChangeSet

_INSTALLED_PARTS = frozenset({"site-packages", "dist-packages"})
_STDLIB_DIR = re.compile(r"(?:python|pypy)\d+(?:\.\d+)*[td]?")  # lib/python3.12/


def _real(path: Path) -> str:
    return os.path.realpath(path)


@dataclass(frozen=True)
class Imports:
    """What the agent reported for the current start of the child."""

    modules: frozenset[Path] = frozenset()
    failed: frozenset[Path] = frozenset()
    reported: bool = False  # a report has arrived for this start

    @cached_property
    def _files(self) -> frozenset[str]:
        return frozenset(os.path.normpath(p) for p in (*self.modules, *self.failed))

    @cached_property
    def _real_files(self) -> frozenset[str]:
        # Resolving every file costs tens of milliseconds for a Django project: only when the
        # paths as written do not match (a symlinked directory), never on a restart's way.
        return self._files | {_real(Path(p)) for p in self._files}

    def holds(self, path: Path) -> bool:
        return os.path.normpath(path) in self._files or _real(path) in self._real_files

    @cached_property
    def _dirs(self) -> frozenset[str]:
        return frozenset(os.path.dirname(f) for f in self._files)

    @cached_property
    def _real_dirs(self) -> frozenset[str]:
        return frozenset(os.path.dirname(f) for f in self._real_files)

    def next_to(self, path: Path) -> bool:
        """True when `path`'s directory holds an imported (or failed) module."""
        if os.path.dirname(os.path.normpath(path)) in self._dirs:
            return True
        return os.path.dirname(_real(path)) in self._real_dirs


@dataclass(frozen=True)
class Decision:
    restart: ChangeSet | None  # None: nothing in the batch restarts the child
    dropped: tuple[Path, ...]


def in_scope(path: Path, kind: Change, imports: Imports) -> bool:
    if path.suffix != ".py" or not imports.reported or imports.holds(path):
        return True
    return kind in (Change.added, Change.deleted) and imports.next_to(path)


def decide(changes: ChangeSet, imports: Imports | None) -> Decision:
    """Split a batch into what restarts and what is dropped; `imports` None means every change
    restarts (`scope = "tree"`, or a command the agent does not report on)."""
    if imports is None or not changes.changes:
        return Decision(changes, ())
    kept = {p: k for p, k in changes.changes.items() if in_scope(p, k, imports)}
    dropped = tuple(p for p in changes.changes if p not in kept)
    if not kept:
        return Decision(None, dropped)
    return Decision(replace(changes, changes=kept), dropped)  # keeps detected_at


def is_installed(path: Path) -> bool:
    """True for a module of an installation: site-packages, dist-packages, the standard library
    (`.../lib/python3.X/...`)."""
    parts = path.parts
    if _INSTALLED_PARTS.intersection(parts):
        return True
    return any(
        parts[i] in ("lib", "lib64") and _STDLIB_DIR.fullmatch(parts[i + 1])
        for i in range(len(parts) - 1)
    )


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def outside_modules(modules: Iterable[Path], roots: Iterable[Path]) -> set[Path]:
    """The imported `.py` files the roots do not cover and that are not installed."""
    real_roots = [_real(r) for r in roots]
    plain_roots = [os.path.normpath(r) for r in roots]
    found = set()
    for module in modules:
        if module.suffix != ".py" or is_installed(module):
            continue
        if _under(os.path.normpath(module), plain_roots) or _under(_real(module), real_roots):
            continue
        found.add(module)
    return found
