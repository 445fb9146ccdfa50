"""StatReloader: scans the watched files every interval and compares what stat() says."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from watchreload.changes import Change
from watchreload.errors import ConfigError
from watchreload.reloaders.base import BaseReloader
from watchreload.scan import iter_matching_files

logger = logging.getLogger(__name__)

# What identifies one version of a file. Any difference counts, not only a newer mtime: a checkout
# that restores an older mtime, or an atomic rename-save that keeps the mtime, is still a change.
Signature = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)
Snapshot = dict[str, Signature]


class StatReloader(BaseReloader):
    """Polls with os.scandir every `interval_s` seconds; needs nothing but the file system."""

    name = "stat"

    def __init__(self, *, interval_s: float = 1.0, **options: Any) -> None:
        if not interval_s > 0:
            raise ConfigError(
                f"poll interval {interval_s!r} is invalid; pass a number of seconds above 0"
            )
        super().__init__(**options)
        self.interval_s = interval_s
        self._unreadable: set[str] = set()

    @classmethod
    def check_availability(cls, **_: Any) -> None:
        """Always available."""

    def tick(self) -> Iterator[None]:
        previous = self.snapshot()  # the baseline: the first scan reports nothing
        self.ready.set()
        yield
        while True:
            self._stop_condition.wait(self.interval_s)
            if self.should_stop:
                return
            current = self.snapshot()
            for path, change in diff_snapshots(previous, current):
                self.notify_file_changed(path, change)
            previous = current
            yield

    def snapshot(self) -> Snapshot:
        spec = self.spec()
        files: Snapshot = {}
        for path in spec.extra_files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            files[os.fspath(path)] = (st.st_mtime_ns, st.st_size, st.st_ino)
        for root, globs in spec.roots.items():
            for file_path, st in iter_matching_files(root, globs, spec.ignore, self._warn_once):
                files[file_path] = (st.st_mtime_ns, st.st_size, st.st_ino)
        return files

    def _warn_once(self, path: str, error: OSError) -> None:
        if path not in self._unreadable:
            self._unreadable.add(path)
            logger.warning(
                "cannot read %s (%s); watching the rest", path, error.strerror or error
            )


def diff_snapshots(previous: Snapshot, current: Snapshot) -> Iterator[tuple[str, Change]]:
    for path, signature in current.items():
        old = previous.get(path)
        if old is None:
            yield path, Change.added
        elif old != signature:
            yield path, Change.modified
    for path in previous.keys() - current.keys():
        yield path, Change.deleted
