"""The one funnel: every change a backend finds reaches notify_file_changed(path), as in Django,
while a burst stays one batch. Real backends, real files, on both backends."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import collect, stays, wait_for
from watchreload.changes import Change, ChangeSet
from watchreload.hooks import file_changed
from watchreload.reloaders.stat import StatReloader
from watchreload.reloaders.watchman import WatchmanReloader

BURST = 200


class SeeingStat(StatReloader):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen: list[Path] = []

    def notify_file_changed(self, path: str | os.PathLike[str]) -> None:
        self.seen.append(Path(path))
        super().notify_file_changed(path)


class SeeingWatchman(WatchmanReloader):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.seen: list[Path] = []

    def notify_file_changed(self, path: str | os.PathLike[str]) -> None:
        self.seen.append(Path(path))
        super().notify_file_changed(path)


@pytest.fixture
def started(tmp_path: Path, backend: str) -> Iterator[SeeingStat | SeeingWatchman]:
    options: dict[str, Any] = {"watch_modules": False, "debounce_ms": 200}
    reloader: SeeingStat | SeeingWatchman
    if backend == "stat":
        reloader = SeeingStat(interval_s=0.05, **options)
    else:
        reloader = SeeingWatchman(timeout_s=5.0, **options)
    reloader.watch_dir(tmp_path, "**/*.py")
    reloader.start()
    try:
        assert reloader.wait_until_ready(15.0), f"the {backend} reloader did not get ready"
        yield reloader
    finally:
        reloader.stop()
        reloader.join(10)
    assert reloader.error is None


def burst(root: Path) -> set[Path]:
    written = set()
    for i in range(BURST):
        path = root / f"pkg{i % 10}" / f"mod{i}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"X = {i}\n")
        written.add(path)
    return written


def test_an_override_of_notify_file_changed_sees_every_path_of_a_burst_in_one_batch(
    started: SeeingStat | SeeingWatchman, tmp_path: Path
) -> None:
    written = burst(tmp_path)
    batches = collect(started, quiet_s=1.0)  # type: ignore[arg-type]
    assert set(started.seen) == written
    assert len(batches) == 1, [len(b) for b in batches]
    assert set(batches[0].paths) == written
    # The kinds survive the per-path call (a scan may catch a file between its creation and its
    # write: added, then modified).
    assert Change.added in set(batches[0].changes.values())


def test_a_file_changed_receiver_sees_every_path_and_one_that_handles_all_reloads_nothing(
    started: SeeingStat | SeeingWatchman, tmp_path: Path
) -> None:
    handled: list[Path] = []

    def handle(sender: object, file_path: Path, **_: object) -> bool:
        if sender is started:
            handled.append(file_path)
        return True

    file_changed.connect(handle)
    try:
        written = burst(tmp_path)
        wait_for(lambda: set(handled) == written, message="the receiver to see every path")
        assert stays(lambda: started.wait_for_changes(0.05) is None, duration_s=0.5)
    finally:
        file_changed.disconnect(handle)
    assert set(started.seen) == written


def test_a_burst_offered_path_by_path_is_not_handed_out_half_done() -> None:
    """A waiter blocked in wait() while notify_files_changed() offers a burst gets all of it."""
    reloader = StatReloader(watch_modules=False, debounce_ms=0)
    got: list[ChangeSet | None] = []
    offering = threading.Event()
    release = threading.Event()

    def slow_notify(path: str | os.PathLike[str]) -> None:
        offering.set()
        release.wait(5)  # hold the burst open at its first path
        StatReloader.notify_file_changed(reloader, path)

    reloader.notify_file_changed = slow_notify  # type: ignore[method-assign]
    paths = [(Path(f"/p/{i}.py"), Change.modified) for i in range(3)]
    offer = threading.Thread(target=reloader.notify_files_changed, args=(paths,))
    waiter = threading.Thread(target=lambda: got.append(reloader.wait_for_changes(5)))
    offer.start()
    assert offering.wait(5)
    waiter.start()
    release.set()
    offer.join(5)
    waiter.join(5)
    assert got and got[0] is not None
    assert got[0].paths == [p for p, _ in paths]
