"""What the Watchman backend stat()s instead of asking the daemon, with scan.py's helpers.

StatFiles: extra files that no watch covers and none may start (installed libraries, the standard
library), checked every spec_check_s. PollingFallback: the whole WatchSpec, scanned while the
daemon is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from watchreload.changes import Change, FileChange
from watchreload.scan import (
    Signature,
    Snapshot,
    SpecScanner,
    diff_snapshots,
    signature_of,
    written_since,
)
from watchreload.spec import WatchSpec


class StatFiles:
    def __init__(self) -> None:
        self.signatures: dict[Path, Signature | None] = {}

    def __bool__(self) -> bool:
        return bool(self.signatures)

    def update(self, paths: Iterable[Path], last_look_ns: int) -> None:
        """Check `paths` from now on; a file new here that was written since the last look at
        the spec is recorded as unseen, so that the next check reports it."""
        signatures: dict[Path, Signature | None] = {}
        for path in paths:
            if path in self.signatures:
                signatures[path] = self.signatures[path]
            else:
                signature = signature_of(path)
                signatures[path] = None if written_since(signature, last_look_ns) else signature
        self.signatures = signatures

    def check(self) -> list[FileChange]:
        changes: list[FileChange] = []
        for path, old in self.signatures.items():
            new = signature_of(path)
            if new != old:
                self.signatures[path] = new
                kind = Change.deleted if new is None else Change.added if old is None else None
                changes.append((path, kind or Change.modified))
        return changes


class PollingFallback:
    """Snapshots of the spec as it is at each poll; the first one, taken here, is the baseline."""

    def __init__(self, spec: Callable[[], WatchSpec]) -> None:
        self._scanner = SpecScanner(spec)
        self.snapshot: Snapshot = self._scanner.snapshot()  # the latest

    def poll(self) -> list[tuple[str, Change]]:
        """What changed since the previous poll."""
        current = self._scanner.snapshot()
        changes = list(diff_snapshots(self.snapshot, current))
        self.snapshot = current
        return changes
