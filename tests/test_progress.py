"""Long waits say so: progress records, ProgressHandler, and watching()'s waiting line.

The handler is checked on a StringIO (off a terminal) and on a real pseudo-terminal; watching() with
a watcher that gets ready late; and the real CLI on a 100,000-file tree that a fresh private
Watchman daemon has never crawled, both off a terminal (the line is written once) and on a pty
(rewritten in place).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pty
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.programs.harness import Watchreload, clean_environ, interrupt_at_teardown
from tests.support import PYTHON, Spawned, WatchmanDaemon, make_tree
from watchreload import process
from watchreload.progress import REWRITE, ProgressHandler, progress, progress_key

BIG_TREE_FILES = 100_000

Spawn = Callable[..., Spawned]


def record(message: str, key: str | None = None) -> logging.LogRecord:
    extra = progress(key) if key else None
    return logging.makeLogRecord({"msg": message, "levelno": logging.INFO, **(extra or {})})


# -- the handler -------------------------------------------------------------------------------


def test_off_a_terminal_a_progress_key_is_written_once() -> None:
    stream = io.StringIO()
    handler = ProgressHandler(stream)
    assert not handler.tty
    for second in (1, 2, 3):
        handler.handle(record(f"waiting; {second} s so far", "watching"))
    handler.handle(record("watching after 3.2 s"))
    handler.handle(record("waiting again; 1 s so far", "other"))
    handler.close()
    assert stream.getvalue() == (
        "waiting; 1 s so far\nwatching after 3.2 s\nwaiting again; 1 s so far\n"
    )


def test_on_a_terminal_the_line_is_rewritten_in_place() -> None:
    master, slave = pty.openpty()
    try:
        with open(slave, "w", closefd=False) as terminal:
            handler = ProgressHandler(terminal)
            assert handler.tty
            for second in (1, 2):
                handler.handle(record(f"waiting; {second} s so far", "watching"))
            handler.handle(record("watching after 2.1 s"))
            handler.handle(record("waiting again", "other"))
            handler.close()  # ends the open line
        written = read_available(master).replace("\r\n", "\n")
    finally:
        os.close(master)
        os.close(slave)
    assert written == (
        f"{REWRITE}waiting; 1 s so far{REWRITE}waiting; 2 s so far\n"
        f"watching after 2.1 s\n{REWRITE}waiting again\n"
    )


def read_available(fd: int, quiet_s: float = 0.2) -> str:
    chunks = []
    while select.select([fd], [], [], quiet_s)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


# -- watching() --------------------------------------------------------------------------------


class LateWatcher:
    """Ready after `ready_after_s`, as a backend is once a slow first crawl is done."""

    name = "late"
    error: BaseException | None = None
    should_stop = False
    waiting_for = "the first crawl of /repo"

    def __init__(self, ready_after_s: float) -> None:
        self._ready = threading.Event()
        self._timer = threading.Timer(ready_after_s, self._ready.set)

    def start(self) -> None:
        self._timer.start()

    def wait_until_ready(self, timeout_s: float) -> bool:
        return self._ready.wait(timeout_s)

    def stop(self) -> None:
        self._timer.cancel()

    def join(self, timeout_s: float | None = None) -> None:
        self._timer.join(timeout_s)


def test_watching_says_what_it_waits_for_and_how_long_it_took(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(process, "WAIT_REPORT_AFTER_S", 0.2)
    monkeypatch.setattr(process, "WAIT_REPORT_EVERY_S", 0.2)
    caplog.set_level(logging.INFO, logger="watchreload.process")
    with process.watching(LateWatcher(0.9), "the test"):
        pass
    messages = [(r.getMessage(), progress_key(r)) for r in caplog.records]
    waiting = [m for m, key in messages if key == "watching"]
    assert 2 <= len(waiting) <= 4, messages
    expected = r"waiting for the first crawl of /repo; \d s so far"
    assert all(re.fullmatch(expected, m) for m in waiting), waiting
    final, key = messages[-1]
    assert key is None and final.startswith("watching after ") and "starting the test" in final


def test_a_quick_start_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchreload.process")
    with process.watching(LateWatcher(0.05), "the test"):
        pass
    assert caplog.records == []


# -- the CLI on a tree a fresh daemon has never crawled ----------------------------------------


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("big") / "tree"
    make_tree(root, BIG_TREE_FILES)
    return root


@pytest.fixture
def fresh_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchmanDaemon]:
    daemon = WatchmanDaemon(tmp_path_factory.mktemp("wf", numbered=True))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def spawn(spawn: Spawn) -> Iterator[Spawn]:
    yield from interrupt_at_teardown(spawn)


@pytest.mark.watchman
@pytest.mark.timeout(90)
def test_first_crawl_is_announced_once_off_a_terminal(
    spawn: Spawn, big_tree: Path, fresh_daemon: WatchmanDaemon, tmp_path: Path
) -> None:
    run = Watchreload(
        spawn,
        big_tree,
        tmp_path / "state",
        backend="watchman",
        env=clean_environ(WATCHMAN_SOCK=str(fresh_daemon.sockname)),
    )
    lines = run.output.splitlines()
    waiting = [line for line in lines if "waiting for Watchman's first crawl of" in line]
    assert len(waiting) == 1, run.output
    assert str(big_tree) in waiting[0]
    assert re.search(r"\(once per daemon\); \d+ s so far$", waiting[0]), waiting[0]
    after = [i for i, line in enumerate(lines) if line.startswith("watchreload: watching after")]
    assert after and after[0] > lines.index(waiting[0]), run.output
    assert lines[after[0]].endswith("s; starting the command")
    assert run.stop(signal.SIGINT) == 128 + signal.SIGTERM, run.output


@pytest.mark.watchman
@pytest.mark.timeout(90)
def test_first_crawl_line_is_rewritten_on_a_terminal(
    big_tree: Path, fresh_daemon: WatchmanDaemon, tmp_path: Path
) -> None:
    master, slave = pty.openpty()
    child = tmp_path / "child.py"
    child.write_text("import time\nprint('child started', flush=True)\ntime.sleep(60)\n")
    watchreload = subprocess.Popen(
        [PYTHON, "-m", "watchreload", "--backend=watchman", "--", PYTHON, str(child)],
        cwd=big_tree,
        env=clean_environ(WATCHMAN_SOCK=str(fresh_daemon.sockname)),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    output = ""
    try:
        deadline = time.monotonic() + 60
        while "child started" not in output and time.monotonic() < deadline:
            output += read_available(master, quiet_s=0.5)
        assert "child started" in output, output
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(watchreload.pid, signal.SIGINT)
        try:
            watchreload.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(watchreload.pid, signal.SIGKILL)
            watchreload.wait(15)
        output += read_available(master)
        os.close(master)
    text = output.replace("\r\n", "\n")
    start = text.index(f"{REWRITE}watchreload: waiting for Watchman's first crawl")
    line_end = text.index("\n", start)
    waiting_line = text[start:line_end]
    # Every update replaced the one before on the same terminal line.
    assert waiting_line.count(REWRITE) >= 1 and "\n" not in waiting_line
    assert text[line_end + 1 :].startswith("watchreload: watching after "), text
