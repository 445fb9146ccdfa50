"""StatReloader, driven tick by tick over real files (Django's tick_twice)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from watchreload.changes import Change, ChangeSet
from watchreload.errors import ConfigError
from watchreload.reloaders.stat import StatReloader


class RecordingStatReloader(StatReloader):
    """Records notifications instead of batching them, so each tick's findings can be read."""

    def __init__(self, **options: object) -> None:
        super().__init__(interval_s=0.001, watch_modules=False, **options)
        self.notified: list[tuple[str, Change]] = []

    def notify_files_changed(self, changes: Iterable[tuple[Path, Change]]) -> None:
        self.notified.extend((os.fspath(path), change) for path, change in changes)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "app.py").write_text("print('app')\n")
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\n")
    return tmp_path


@pytest.fixture
def reloader(tree: Path) -> Iterator[RecordingStatReloader]:
    reloader = RecordingStatReloader()
    reloader.watch_dir(tree, "**/*.py")
    yield reloader
    reloader.stop()


def tick_twice(reloader: RecordingStatReloader) -> Iterator[None]:
    ticker = reloader.tick()
    next(ticker)  # baseline scan
    yield
    next(ticker)  # the scan that sees what the test did


def notified(reloader: RecordingStatReloader) -> dict[str, Change]:
    return dict(reloader.notified)


def test_first_scan_reports_nothing(reloader: RecordingStatReloader) -> None:
    for _ in tick_twice(reloader):
        pass
    assert reloader.notified == []


def test_in_place_edit(reloader: RecordingStatReloader, tree: Path) -> None:
    for _ in tick_twice(reloader):
        (tree / "app.py").write_text("print('edited, and longer')\n")
    assert notified(reloader) == {str(tree / "app.py"): Change.modified}


def test_mtime_moved_backwards_is_a_change(reloader: RecordingStatReloader, tree: Path) -> None:
    target = tree / "pkg" / "mod.py"
    for _ in tick_twice(reloader):
        st = target.stat()
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
    assert notified(reloader) == {str(target): Change.modified}


def test_same_size_and_mtime_but_new_inode_is_a_change(
    reloader: RecordingStatReloader, tree: Path
) -> None:
    """An editor's atomic save: write a temporary file, then rename it over the original."""
    target = tree / "app.py"
    original = target.stat()
    for _ in tick_twice(reloader):
        temporary = tree / ".app.py.tmp"
        temporary.write_text("print('new!')\n")  # same length as the original
        os.utime(temporary, ns=(original.st_atime_ns, original.st_mtime_ns))
        os.replace(temporary, target)
    assert target.stat().st_mtime_ns == original.st_mtime_ns
    assert notified(reloader) == {str(target): Change.modified}


def test_deletion_and_new_file_in_a_new_directory(
    reloader: RecordingStatReloader, tree: Path
) -> None:
    for _ in tick_twice(reloader):
        (tree / "pkg" / "mod.py").unlink()
        (tree / "fresh" / "deeper").mkdir(parents=True)
        (tree / "fresh" / "deeper" / "new.py").write_text("")
    assert notified(reloader) == {
        str(tree / "pkg" / "mod.py"): Change.deleted,
        str(tree / "fresh" / "deeper" / "new.py"): Change.added,
    }


def test_ignored_directories_and_other_globs_are_not_reported(
    reloader: RecordingStatReloader, tree: Path
) -> None:
    for _ in tick_twice(reloader):
        for ignored in ("node_modules", ".git", "__pycache__", ".venv"):
            (tree / ignored).mkdir()
            (tree / ignored / "x.py").write_text("")
        (tree / "notes.txt").write_text("")
        (tree / "pkg" / ".mod.py.swp").write_text("")
    assert reloader.notified == []


def test_extra_files_are_watched_whatever_the_globs(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text("a = 1\n")
    reloader = RecordingStatReloader()
    reloader.extra_files.add(config)
    for _ in tick_twice(reloader):
        config.write_text("a = 22\n")
    assert notified(reloader) == {str(config): Change.modified}


def test_a_root_created_after_start_is_picked_up(tmp_path: Path) -> None:
    later = tmp_path / "not-yet"
    reloader = RecordingStatReloader()
    reloader.watch_dir(later, "**/*.py")
    for _ in tick_twice(reloader):
        later.mkdir()
        (later / "m.py").write_text("")
    assert notified(reloader) == {str(later / "m.py"): Change.added}


def test_default_ignores_can_be_turned_off(tree: Path) -> None:
    reloader = RecordingStatReloader(ignore_patterns=())
    reloader.watch_dir(tree, "**/*.py")
    for _ in tick_twice(reloader):
        (tree / "node_modules").mkdir()
        (tree / "node_modules" / "x.py").write_text("")
    assert notified(reloader) == {str(tree / "node_modules" / "x.py"): Change.added}


def test_watched_files_lists_globbed_and_extra_files(tree: Path) -> None:
    reloader = StatReloader(watch_modules=False)
    reloader.watch_dir(tree, "**/*.py")
    reloader.extra_files.add(tree / "extra.cfg")
    assert set(reloader.watched_files()) == {
        tree / "app.py",
        tree / "pkg" / "mod.py",
        tree / "extra.cfg",
    }
    assert set(reloader.watched_files(include_globs=False)) == {tree / "extra.cfg"}


def test_library_mode_watches_imported_modules() -> None:
    reloader = StatReloader()
    assert Path(__file__).resolve() in set(reloader.watched_files())


@pytest.mark.parametrize("interval", [0, -1.0])
def test_invalid_interval_is_a_config_error(interval: float) -> None:
    with pytest.raises(ConfigError, match="poll interval"):
        StatReloader(interval_s=interval)


def test_a_running_reloader_delivers_one_batch_and_stops_promptly(tree: Path) -> None:
    reloader = StatReloader(interval_s=0.02, watch_modules=False, debounce_ms=30)
    reloader.watch_dir(tree, "**/*.py")
    reloader.start()
    try:
        assert reloader.wait_for_changes(timeout_s=0.1) is None
        (tree / "app.py").write_text("print('changed')\n")
        (tree / "pkg" / "mod.py").write_text("X = 2\n")
        batch = reloader.wait_for_changes(timeout_s=10)
        assert batch is not None
        # Both writes land in one batch unless a scan fell between them; then the next has it.
        seen = set(batch.paths)
        if len(seen) < 2:
            follow_up = reloader.wait_for_changes(timeout_s=10)
            assert follow_up is not None
            seen |= set(follow_up.paths)
        assert seen == {tree / "app.py", tree / "pkg" / "mod.py"}
    finally:
        reloader.stop()
        reloader.join(timeout_s=5)
    assert reloader.error is None


def test_a_module_imported_after_start_is_no_change(tmp_path: Path) -> None:
    """In library mode a lazily imported module joins the watched files; it must not reload."""
    module = tmp_path / "lazy.py"
    module.write_text("X = 1\n")
    an_hour_ago = module.stat().st_mtime_ns - 3600 * 10**9
    os.utime(module, ns=(an_hour_ago, an_hour_ago))
    reloader = RecordingStatReloader()
    for _ in tick_twice(reloader):
        reloader.extra_files.add(module)  # as if imported now
    assert reloader.notified == []


def test_a_module_edited_before_it_joins_the_watch_is_a_change(tmp_path: Path) -> None:
    module = tmp_path / "lazy.py"
    reloader = RecordingStatReloader()
    for _ in tick_twice(reloader):
        module.write_text("X = 2\n")  # edited after the previous scan, then imported
        reloader.extra_files.add(module)
    assert notified(reloader) == {str(module): Change.added}


def test_a_module_that_leaves_the_watch_is_no_deletion(tmp_path: Path) -> None:
    module = tmp_path / "gone_from_sys_modules.py"
    module.write_text("")
    reloader = RecordingStatReloader()
    reloader.extra_files.add(module)
    for _ in tick_twice(reloader):
        reloader.extra_files.discard(module)
    assert reloader.notified == []


def test_a_burst_that_spans_several_scans_is_one_batch(tree: Path) -> None:
    # The quiet period is shorter than the interval, as with the defaults (50 ms and 1 s).
    reloader = StatReloader(interval_s=0.2, watch_modules=False, debounce_ms=50)
    reloader.watch_dir(tree, "**/*.py")
    done = threading.Event()

    def slow_checkout() -> None:
        for i in range(40):  # ~0.4 s of writes: many scans see part of it
            (tree / f"burst_{i}.py").write_text("")
            done.wait(0.01)
        done.set()

    reloader.start()
    writer = threading.Thread(target=slow_checkout)
    try:
        assert reloader.wait_until_ready(10)
        writer.start()
        batches: list[ChangeSet] = []
        while not (done.is_set() and batches):
            batch = reloader.wait_for_changes(timeout_s=10)
            assert batch is not None, "no batch within 10 s"
            batches.append(batch)
        assert reloader.wait_for_changes(timeout_s=0.3) is None
    finally:
        done.set()
        writer.join()
        reloader.stop()
        reloader.join(timeout_s=5)
    assert [len(b) for b in batches] == [40]


class CountingStatReloader(RecordingStatReloader):
    def __init__(self) -> None:
        super().__init__(debounce_ms=50)
        self.scans = 0

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        self.scans += 1
        return super().snapshot()


def test_a_change_written_just_before_the_scan_is_confirmed_by_a_rescan(tree: Path) -> None:
    reloader = CountingStatReloader()
    reloader.watch_dir(tree, "**/*.py")
    for _ in tick_twice(reloader):
        (tree / "app.py").write_text("print('a burst may still be going on')\n")
    assert reloader.scans >= 3  # baseline, the scan that saw it, and at least one rescan
    assert notified(reloader) == {str(tree / "app.py"): Change.modified}


def test_a_change_older_than_the_quiet_period_needs_no_rescan(tree: Path) -> None:
    reloader = CountingStatReloader()
    reloader.watch_dir(tree, "**/*.py")
    target = tree / "app.py"
    for _ in tick_twice(reloader):
        target.write_text("print('saved a while ago')\n")
        a_second_ago = time.time_ns() - 10**9
        os.utime(target, ns=(a_second_ago, a_second_ago))
    assert reloader.scans == 2  # baseline and the scan that saw it
    assert notified(reloader) == {str(target): Change.modified}
