"""One watcher in its own process, reporting every notification with `time.monotonic()`.

    python -m benchmarks.worker WATCHER ROOT

Each watcher watches `**/*.py` under ROOT with its usual ignore rules and, instead of reloading,
prints one line per notification on stdout:

    F <monotonic> <path>                     one file reported (a per-file callback)
    B <monotonic> <n> <path>\t<path>...      one delivery that would restart the program, with
                                             its first paths (at most MAX_PATHS)

For APIs that deliver sets (watchfiles, a Watchman subscription, watchreload's ChangeSets) a `B`
line is one set. For per-file APIs (Django's `notify_file_changed`, a watchdog handler) every file
is an `F` line; Django's `B` is one `tick()` step that reported files, stamped with the time of its
first file (the moment Django would call `trigger_reload`); a watchdog `B` is one event, since
nothing coalesces them.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

MAX_PATHS = 50
POLL_INTERVAL_S = 1.0  # Django's StatReloader.SLEEP_TIME; watchreload's default too
IGNORED_DIRS = ("node_modules", ".venv", "__pycache__", ".git")

_out_lock = threading.Lock()
_pending = threading.Event()
stop_event = threading.Event()
FLUSH_DELAY_S = 0.002


def _flusher() -> None:
    """Flush stdout shortly after a write, so that a burst costs a few syscalls, not thousands.

    Lines carry the time of the notification itself, so a late flush delays nothing measured;
    while idle this thread blocks and costs no CPU.
    """
    while True:
        _pending.wait()
        time.sleep(FLUSH_DELAY_S)
        with _out_lock:
            _pending.clear()
            sys.stdout.flush()


def _write(line: str) -> None:
    with _out_lock:
        sys.stdout.write(line)
    _pending.set()


def emit_file(t: float, path: str | os.PathLike[str]) -> None:
    _write(f"F {t:.6f} {os.fspath(path)}\n")


def emit_batch(t: float, paths: Iterable[str | os.PathLike[str]]) -> None:
    listed = [os.fspath(p) for p in paths]
    shown = "\t".join(listed[:MAX_PATHS])
    _write(f"B {t:.6f} {len(listed)} {shown}\n")


def emit_files_and_batch(t: float, paths: Iterable[str | os.PathLike[str]]) -> None:
    listed = list(paths)
    if len(listed) <= MAX_PATHS:
        for path in listed:
            emit_file(t, path)
    emit_batch(t, listed)


# -- watchreload ---------------------------------------------------------------------------------


def run_watchreload(root: Path, backend: str) -> None:
    from watchreload.reloaders import get_reloader

    reloader = get_reloader(backend, poll_interval_s=POLL_INTERVAL_S, watch_modules=False)  # type: ignore[arg-type]
    # Backends report a whole scan or Watchman result through notify_files_changed() when they
    # have it (it is what notify_file_changed() calls too); record there, before the debounce.
    if hasattr(reloader, "notify_files_changed"):
        original_many = reloader.notify_files_changed

        def recording_many(changes: Iterable[Any]) -> None:
            listed = list(changes)
            now = time.monotonic()
            for path, _ in listed[:MAX_PATHS]:
                emit_file(now, path)
            original_many(listed)

        reloader.notify_files_changed = recording_many  # type: ignore[method-assign]
    else:
        original = reloader.notify_file_changed

        def recording(path: Any, *args: Any, **kwargs: Any) -> None:
            emit_file(time.monotonic(), path)
            original(path, *args, **kwargs)

        reloader.notify_file_changed = recording  # type: ignore[method-assign]
    reloader.watch_dir(root, "**/*.py")
    reloader.start()
    try:
        while not stop_event.is_set():
            changes = reloader.wait_for_changes(timeout_s=0.5)
            if changes is not None:
                emit_batch(time.monotonic(), changes.paths)
            elif reloader.error is not None:
                raise RuntimeError(f"watchreload {backend} failed") from reloader.error
    finally:
        reloader.stop()
        reloader.join(5.0)


# -- Django --------------------------------------------------------------------------------------


def _django_reloader(kind: str) -> Any:
    from django.utils import autoreload

    # Watch the tree only, as every other watcher here does: not the harness's own imports, and
    # (for Django's WatchmanReloader) not a watch on every sys.path directory.
    autoreload.iter_all_python_module_files = lambda: frozenset()
    autoreload.sys_path_directories = lambda: iter(())
    base = autoreload.StatReloader if kind == "stat" else autoreload.WatchmanReloader

    class Recording(base):  # type: ignore[misc, valid-type]
        first_at: float | None = None
        pending: list[Path]

        def notify_file_changed(self, path: Path) -> None:
            now = time.monotonic()
            emit_file(now, path)
            if self.first_at is None:
                self.first_at = now
                self.pending = []
            self.pending.append(path)

    return Recording()


def run_django(root: Path, kind: str) -> None:
    reloader = _django_reloader(kind)
    if kind == "watchman":
        reloader.check_availability()
    reloader.watch_dir(root, "**/*.py")
    ticker = reloader.tick()
    try:
        while not stop_event.is_set():
            next(ticker)
            if reloader.first_at is not None:
                emit_batch(reloader.first_at, reloader.pending)
                reloader.first_at = None
    finally:
        reloader.stop()


# -- watchfiles ----------------------------------------------------------------------------------


def run_watchfiles(root: Path) -> None:
    import watchfiles

    for changes in watchfiles.watch(
        root, watch_filter=watchfiles.PythonFilter(), stop_event=stop_event, force_polling=False
    ):
        emit_files_and_batch(time.monotonic(), sorted({p for _, p in changes}))


# -- watchdog ------------------------------------------------------------------------------------


def run_watchdog(root: Path) -> None:
    from watchdog.events import (
        DirCreatedEvent,
        DirDeletedEvent,
        DirMovedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileModifiedEvent,
        FileMovedEvent,
        FileSystemEvent,
        PatternMatchingEventHandler,
    )
    from watchdog.observers.inotify import InotifyObserver

    changes = {"modified", "created", "deleted", "moved"}

    class Handler(PatternMatchingEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.event_type not in changes:  # opened / closed: not a change by themselves
                return
            now = time.monotonic()
            path = os.fsdecode(getattr(event, "dest_path", "") or event.src_path)
            emit_file(now, path)
            emit_batch(now, [path])

    handler = Handler(
        # watchdog 7 matches whole paths (PurePath.full_match): '*.py' alone matches nothing
        patterns=["**/*.py"],
        ignore_patterns=[f"**/{d}/**" for d in IGNORED_DIRS],
        ignore_directories=True,
    )
    # Only the change events: by default watchdog 7 also asks inotify for IN_OPEN/IN_CLOSE, and
    # on 100,000 files its own directory walks then overflow the queue in a loop (see README).
    event_filter = [
        FileModifiedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileMovedEvent,
        DirCreatedEvent,
        DirDeletedEvent,
        DirMovedEvent,
    ]
    observer = InotifyObserver()
    observer.schedule(handler, os.fspath(root), recursive=True, event_filter=event_filter)
    observer.start()
    try:
        while not stop_event.wait(0.5):
            if not observer.is_alive():
                raise RuntimeError("the watchdog observer stopped")
    finally:
        observer.stop()
        observer.join(5.0)


# -- the floor: a bare Watchman subscription -----------------------------------------------------


def run_pywatchman(root: Path) -> None:
    import pywatchman

    client = pywatchman.client(timeout=2.0)
    watch = client.query("watch-project", os.fspath(root))
    watch_root, relative = watch["watch"], watch.get("relative_path")
    ignored = [
        ["match", f"**/{d}/**", "wholename", {"includedotfiles": True}] for d in IGNORED_DIRS
    ]
    query: dict[str, Any] = {
        "expression": ["allof", ["type", "f"], ["suffix", "py"], ["not", ["anyof", *ignored]]],
        "fields": ["name"],
        "since": client.query("clock", watch_root)["clock"],
    }
    if relative:
        query["relative_root"] = relative
    base = Path(watch_root, relative or "")
    client.query("subscribe", watch_root, "floor", query)
    try:
        while not stop_event.is_set():
            try:
                client.receive()
            except pywatchman.SocketTimeout:
                continue
            for result in client.getSubscription("floor") or []:
                files = result.get("files", [])
                if files and not result.get("is_fresh_instance"):
                    emit_files_and_batch(time.monotonic(), [base / f for f in files])
    finally:
        client.close()


WATCHERS: dict[str, Callable[[Path], None]] = {
    "watchreload-stat": lambda root: run_watchreload(root, "stat"),
    "watchreload-watchman": lambda root: run_watchreload(root, "watchman"),
    "django-stat": lambda root: run_django(root, "stat"),
    "django-watchman": lambda root: run_django(root, "watchman"),
    "watchfiles": run_watchfiles,
    "watchdog": run_watchdog,
    "pywatchman": run_pywatchman,
}


def main(argv: list[str]) -> int:
    name, root = argv
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    print(f"S {time.monotonic():.6f} started", flush=True)
    threading.Thread(target=_flusher, name="flusher", daemon=True).start()
    WATCHERS[name](Path(root))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
