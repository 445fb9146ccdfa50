"""StatReloader: scans the watched files every interval and compares what stat() says."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watchreload.changes import Change
from watchreload.errors import ConfigError
from watchreload.reloaders.base import BaseReloader
from watchreload.scan import Snapshot, SpecScanner, diff_snapshots, signature_of, written_since

logger = logging.getLogger(__name__)

BURST_QUIET_MIN_S = 0.05  # see StatReloader._burst_quiet_s


class StatReloader(BaseReloader):
    """Polls with os.scandir every `interval_s` seconds; needs nothing but the file system.

    `interval_s` is the poll-interval setting when one is given, else `SLEEP_TIME` (Django's
    name, which a subclass or a test may change).
    """

    name = "stat"
    SLEEP_TIME: float = 1.0  # seconds between scans when no interval is given (Django's)

    def __init__(self, *, interval_s: float | None = None, **options: Any) -> None:
        if interval_s is not None and not interval_s > 0:
            raise ConfigError(
                f"poll interval {interval_s!r} is invalid; pass a number of seconds above 0"
            )
        super().__init__(**options)
        self._interval_s = interval_s
        self._scanner = SpecScanner(self.spec)
        self._previous: Snapshot = {}
        self._previous_extras: frozenset[str] = frozenset()
        self._previous_scan_ns = 0
        self.waiting_for = ""  # what a slow start waits for, which watching() reports

    @classmethod
    def check_availability(cls, **_: Any) -> None:
        """Always available."""

    def tick(self) -> Iterator[None]:
        self._take_baseline()
        yield
        while not self._stop_condition.wait(self.interval_s):
            self._poll()
            yield

    def _take_baseline(self) -> None:
        self._previous_scan_ns = time.time_ns()
        roots = ", ".join(map(str, self.spec().roots)) or "the watched files"
        self.waiting_for = f"the first scan of {roots}"
        self._previous = self.snapshot()  # the baseline: the first scan reports nothing
        self._previous_extras = self._scanner.extra_paths
        self.waiting_for = ""
        self.ready.set()

    def _poll(self) -> None:
        """One scan, and the rescans of a burst it found."""
        if self._scan_and_notify():
            self._finish_burst()

    def _finish_burst(self) -> None:
        """A burst (a checkout, a formatter) can straddle two scans: hold the batch and scan
        again at once until a scan finds nothing recent (or the debounce cap passes), so that the
        whole burst is one reload. A lone edit made before the quiet period pays no rescan."""
        burst_started = time.monotonic()
        self.batcher.pause()
        try:
            while time.monotonic() - burst_started < self.batcher.debounce_max_s:
                if self._stop_condition.wait(self._burst_quiet_s()):
                    return
                if not self._scan_and_notify():
                    return
        finally:
            self.batcher.resume()

    def _burst_quiet_s(self) -> float:
        """How long a scan's newest change must be past for the burst to count as over: the
        debounce, but no less than BURST_QUIET_MIN_S (a checkout pauses between its writes)."""
        return max(self.batcher.debounce_s, BURST_QUIET_MIN_S)

    def _scan_and_notify(self) -> bool:
        """Scan and report what differs from the previous scan. True when a burst may still be
        under way: something changed, and a change is too recent (within the quiet period before
        the scan) or has no mtime (a deletion) to say that the writer had finished."""
        scan_ns = time.time_ns()
        current = self.snapshot()
        changes = [
            (Path(path), change)
            for path, change in diff_snapshots(self._previous, current)
            if not self._only_newly_watched(path, change)
        ]
        rules_seen = self._rules_generation()
        if changes:
            self.notify_files_changed(changes)
        if self._rules_generation() != rules_seen:
            current = self._rescan_under_new_rules(current, scan_ns)
        self._previous, self._previous_extras, self._previous_scan_ns = (
            current,
            self._scanner.extra_paths,
            scan_ns,
        )
        quiet_since_ns = scan_ns - int(self._burst_quiet_s() * 1e9)
        return any(
            change is Change.deleted or written_since(current.get(os.fspath(path)), quiet_since_ns)
            for path, change in changes
        )

    def _rules_generation(self) -> int:
        return self.gitignore_rules.generation if self.gitignore_rules is not None else 0

    def _rescan_under_new_rules(self, current: Snapshot, scan_ns: int) -> Snapshot:
        """The snapshot to compare the next scan with, once an ignore file changed the rules.

        `current` was scanned under the old rules: files they hid and the new ones do not would
        all look added at the next scan, and restart the program for an edit to `.gitignore`.
        A scan under the new rules adds them as they are now, unless written since `current`
        was scanned (then the next scan reports them); files in both keep the signature of
        `current`, so that an edit since is still seen.
        """
        merged = dict(current)
        for path, signature in self.snapshot().items():
            if path not in merged and not written_since(signature, scan_ns):
                merged[path] = signature
        return merged

    def _only_newly_watched(self, path: str, change: Change) -> bool:
        """True when `path` only joined or left the extra files, and did not itself change.

        In library mode a module imported after start joins the extra files: it is no new file,
        and reporting it would restart the program every time it imports that module again. It
        is reported only when its mtime says it was written after the previous scan.
        """
        previous_extras, extra_paths = self._previous_extras, self._scanner.extra_paths
        if change is Change.added and path in extra_paths and path not in previous_extras:
            return not written_since(signature_of(path), self._previous_scan_ns)
        if change is Change.deleted and path in previous_extras:
            return path not in extra_paths and os.path.exists(path)
        return False

    def snapshot(self) -> Snapshot:
        """What each scan compares with the previous one: the scanner's walk of the spec; but
        when `watched_files()` or `snapshot_files()` is replaced (by a subclass or a test),
        `snapshot_files()`, as Django's tick reads it."""
        if not self._files_replaced():
            return self._scanner.snapshot()
        return {os.fspath(path): (int(mtime * 1e9), 0, 0) for path, mtime in self.snapshot_files()}

    # -- Django's names ----------------------------------------------------------------------

    @property
    def interval_s(self) -> float:
        return self.SLEEP_TIME if self._interval_s is None else self._interval_s

    def snapshot_files(self) -> Iterator[tuple[Path, float]]:
        """Django's: `(path, st_mtime)` for each of `watched_files()` that exists, once each."""
        seen: set[Path] = set()
        for path in self.watched_files():
            if path in seen:
                continue
            try:
                mtime = path.stat().st_mtime
            except OSError:  # it does not exist (any more)
                continue
            seen.add(path)
            yield path, mtime

    def _files_replaced(self) -> bool:
        replaced_here = "watched_files" in vars(self) or "snapshot_files" in vars(self)
        cls = type(self)
        return (
            replaced_here
            or cls.watched_files is not BaseReloader.watched_files
            or cls.snapshot_files is not StatReloader.snapshot_files
        )
