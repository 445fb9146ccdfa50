"""ChangeBatcher: the one place that turns a stream of changes into debounced batches."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from watchreload.changes import Change, ChangeBatcher, ChangeSet
from watchreload.hooks import file_changed
from watchreload.reloaders.stat import StatReloader


def test_a_burst_becomes_one_batch() -> None:
    batcher = ChangeBatcher(debounce_ms=50)
    for i in range(1000):
        batcher.add(Path(f"/tree/{i}.py"), Change.added)
    batch = batcher.wait(timeout_s=5)
    assert batch is not None and len(batch) == 1000
    assert batcher.wait(timeout_s=0.2) is None


def test_the_latest_kind_of_change_wins() -> None:
    batcher = ChangeBatcher(debounce_ms=10)
    batcher.add(Path("/a.py"), Change.added)
    batcher.add(Path("/a.py"), Change.deleted)
    assert batcher.wait(timeout_s=5) == ChangeSet({Path("/a.py"): Change.deleted})


def test_a_never_ending_stream_still_produces_a_batch_at_the_cap() -> None:
    batcher = ChangeBatcher(debounce_ms=100, debounce_max_ms=300)
    stop = threading.Event()

    def stream() -> None:
        i = 0
        while not stop.is_set():
            batcher.add(Path(f"/{i}.py"))
            i += 1
            stop.wait(0.01)  # always inside the quiet period

    writer = threading.Thread(target=stream)
    writer.start()
    try:
        batch = batcher.wait(timeout_s=10)
        still_streaming = writer.is_alive() and not stop.is_set()
    finally:
        stop.set()
        writer.join()
    assert batch is not None and len(batch) > 0
    assert still_streaming


def test_pause_holds_changes_back_and_resume_releases_one_batch() -> None:
    batcher = ChangeBatcher(debounce_ms=10)
    batcher.pause()
    batcher.add(Path("/a.py"))
    batcher.add(Path("/b.py"))
    assert batcher.wait(timeout_s=0.3) is None
    batcher.resume()
    batch = batcher.wait(timeout_s=0)
    assert batch is not None and set(batch.paths) == {Path("/a.py"), Path("/b.py")}


def test_a_reason_alone_makes_a_batch() -> None:
    batcher = ChangeBatcher(debounce_ms=10)
    batcher.add_reason("Watchman restarted")
    batch = batcher.wait(timeout_s=5)
    assert batch is not None and batch.describe() == "Watchman restarted"


def test_close_wakes_a_waiter() -> None:
    batcher = ChangeBatcher()
    results: list[ChangeSet | None] = [ChangeSet()]
    waiter = threading.Thread(target=lambda: results.__setitem__(0, batcher.wait()))
    waiter.start()
    time.sleep(0)  # let it block; close() must wake it whenever it got there
    batcher.close()
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    assert results == [None]


def test_describe_names_what_changed() -> None:
    assert ChangeSet({Path("/a.py"): Change.modified}).describe() == "/a.py modified"
    many = ChangeSet({Path(f"/{i}.py"): Change.added for i in range(1200)})
    assert many.describe() == "1,200 files changed (/0.py, /1.py, /2.py, ...)"


def test_a_file_changed_hook_that_returns_true_handles_the_change() -> None:
    reloader = StatReloader(watch_modules=False, debounce_ms=10)
    seen: list[Path] = []

    def handle_translations(sender: object, file_path: Path, **_: object) -> bool:
        seen.append(file_path)
        return file_path.suffix == ".mo"

    file_changed.connect(handle_translations)
    try:
        reloader.notify_file_changed(Path("/locale/de.mo"))
        assert reloader.wait_for_changes(timeout_s=0.2) is None
        reloader.notify_file_changed(Path("/app.py"))
        batch = reloader.wait_for_changes(timeout_s=5)
    finally:
        file_changed.disconnect(handle_translations)
    assert seen == [Path("/locale/de.mo"), Path("/app.py")]
    assert batch is not None and batch.paths == [Path("/app.py")]
