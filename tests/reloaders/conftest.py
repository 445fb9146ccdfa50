from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WatchmanDaemon
from tests.support import wait_for
from watchreload.changes import ChangeSet
from watchreload.reloaders.watchman import WatchmanReloader

StartWatchman = Callable[..., WatchmanReloader]


@pytest.fixture
def start_watchman(watchman_daemon: WatchmanDaemon) -> Iterator[StartWatchman]:
    """Start WatchmanReloaders on roots (waiting until subscribed); stop and join them after."""
    started: list[WatchmanReloader] = []

    def _start(*roots: Path, glob: str = "**/*.py", **options: Any) -> WatchmanReloader:
        options.setdefault("watch_modules", False)
        options.setdefault("timeout_s", 5.0)
        reloader = WatchmanReloader(**options)
        for root in roots:
            reloader.watch_dir(root, glob)
        started.append(reloader)
        reloader.start()
        wait_for(reloader.ready.is_set, message="the reloader to subscribe")
        return reloader

    yield _start
    for reloader in started:
        reloader.stop()
    for reloader in started:
        reloader.join(10)
        assert reloader._thread is not None and not reloader._thread.is_alive()
        assert reloader.error is None, f"the reloader failed: {reloader.error!r}"


def collect(
    reloader: WatchmanReloader, quiet_s: float = 1.0, first_s: float = 15.0
) -> list[ChangeSet]:
    """Every batch until none arrives for `quiet_s` (the first may take up to `first_s`)."""
    batches: list[ChangeSet] = []
    timeout = first_s
    while True:
        batch = reloader.wait_for_changes(timeout)
        if batch is None:
            return batches
        batches.append(batch)
        timeout = quiet_s


def changes_of(batches: list[ChangeSet]) -> dict[Path, str]:
    merged: dict[Path, str] = {}
    for batch in batches:
        for path, change in batch.changes.items():
            merged[path] = change.name
    return merged


class BatchRecorder:
    """Reads batches as they are released, as the supervisor does, so that each one counts."""

    def __init__(self, reloader: WatchmanReloader) -> None:
        self.reloader = reloader
        self.batches: list[ChangeSet] = []
        self.last_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batch-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self.reloader.wait_for_changes(0.05)
            if batch is not None:
                self.batches.append(batch)
                self.last_at = time.monotonic()

    def settle(self, quiet_s: float = 2.0, timeout_s: float = 30.0) -> list[ChangeSet]:
        """Wait for a first batch, then until none came for `quiet_s`; stop and return them."""
        try:
            wait_for(lambda: self.batches, timeout_s=timeout_s, message="a first batch")
            wait_for(
                lambda: time.monotonic() - self.last_at >= quiet_s,
                timeout_s=timeout_s,
                message="the batches to stop",
            )
        finally:
            self._stop.set()
            self._thread.join(5)
        return self.batches
