"""Change kinds, the ChangeSet handed to whoever reloads, and the one place that debounces."""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Watchman's own settle (it sends a result once the tree has been quiet this long): on that
# backend the default adds no wait of its own (reloaders/watchman/reloader.py).
DEFAULT_DEBOUNCE_MS = 20
DEFAULT_DEBOUNCE_MAX_MS = 2000


class Change(enum.IntEnum):
    added = 1
    modified = 2
    deleted = 3


FileChange = tuple[Path, Change]


@dataclass(frozen=True)
class ChangeSet:
    """One debounced batch of changes: one batch means one reload."""

    changes: dict[Path, Change] = field(default_factory=dict)
    reason: str = ""  # set when the batch is not about specific files (e.g. a daemon restart)
    # time.monotonic() of the batch's first change (readiness counts from it); None when unknown
    detected_at: float | None = field(default=None, compare=False)

    @property
    def paths(self) -> list[Path]:
        return list(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def describe(self, limit: int = 3) -> str:
        """A short human description: 'app.py modified', '1,204 files changed (a.py, ...)'."""
        if not self.changes:
            return self.reason or "reload requested"
        items = list(self.changes.items())
        if len(items) == 1:
            path, kind = items[0]
            return f"{path} {kind.name}"
        shown = ", ".join(str(p) for p, _ in items[:limit])
        more = ", ..." if len(items) > limit else ""
        return f"{len(items):,} files changed ({shown}{more})"


class ChangeBatcher:
    """Collects changes from a backend thread and hands them out as debounced ChangeSets.

    A batch closes once no change has arrived for `debounce_ms`, or `debounce_max_ms` after its
    first change, so a never-ending stream still reloads. `pause()` holds batches back (a Watchman
    state such as a checkout is in progress); `resume()` releases what was held as one batch.
    """

    def __init__(
        self,
        debounce_ms: float = DEFAULT_DEBOUNCE_MS,
        debounce_max_ms: float = DEFAULT_DEBOUNCE_MAX_MS,
    ) -> None:
        self.debounce_s = debounce_ms / 1000
        self.debounce_max_s = max(debounce_max_ms, debounce_ms) / 1000
        self._cond = threading.Condition()
        self._changes: dict[Path, Change] = {}
        self._reason = ""
        self._first_at = 0.0
        self._last_at = 0.0
        self._pauses = 0
        self._closed = False

    def add(self, path: Path, change: Change = Change.modified) -> None:
        self.add_many([(path, change)])

    def add_many(self, changes: Iterable[FileChange]) -> None:
        """Add changes as one unit: a waiter sees all of them or none, so a burst the backend
        already knows is whole (one Watchman result, one scan) cannot be cut in two."""
        with self._cond:
            was_empty = not self._changes and not self._reason
            self._changes.update(changes)
            if not self._changes and not self._reason:
                return
            now = time.monotonic()
            if was_empty:
                self._first_at = now
            self._last_at = now
            self._cond.notify_all()

    def add_reason(self, reason: str) -> None:
        """Ask for a reload that is not about particular files."""
        with self._cond:
            now = time.monotonic()
            if not self._changes and not self._reason:
                self._first_at = now
            self._last_at = now
            self._reason = reason
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._pauses += 1

    def resume(self) -> None:
        with self._cond:
            self._pauses = max(0, self._pauses - 1)
            if self._pauses == 0 and (self._changes or self._reason):
                self._first_at = self._last_at = time.monotonic() - self.debounce_max_s
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        with self._cond:
            return self._pauses > 0

    def close(self) -> None:
        """Wake every waiter; `wait()` then returns None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait(self, timeout_s: float | None = None) -> ChangeSet | None:
        """Block until a batch is ready (and return it), the timeout passes, or `close()`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                pending = bool(self._changes or self._reason)
                if pending and self._pauses == 0:
                    due = min(self._last_at + self.debounce_s, self._first_at + self.debounce_max_s)
                    if now >= due:
                        return self._take()
                    wake = due
                else:
                    wake = None
                if deadline is not None:
                    if now >= deadline:
                        return None
                    wake = deadline if wake is None else min(wake, deadline)
                self._cond.wait(None if wake is None else wake - now)
            return None

    def _take(self) -> ChangeSet:
        batch = ChangeSet(self._changes, self._reason, self._first_at)
        self._changes = {}
        self._reason = ""
        return batch
