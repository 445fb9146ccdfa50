from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support import Spawned, StartWatchman, WatchmanDaemon, wait_for
from watchreload.reloaders.watchman import WatchmanReloader


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield

    def only_old_threads() -> bool:
        return not [t for t in threading.enumerate() if t not in before and t.is_alive()]

    try:
        wait_for(only_old_threads, timeout_s=5, message="threads started by the test to end")
    except AssertionError:
        leaked = [t.name for t in threading.enumerate() if t not in before]
        pytest.fail(f"test leaked threads: {leaked}")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Spawned]]:
    """Start a process in its own session; at teardown fail if anything of it is still alive.

    A test stops what it started (for example SIGINT to watchreload, then wait); whatever is left
    at teardown is killed by its session and reported as a leak.
    """
    started: list[Spawned] = []

    def _spawn(args: Sequence[str], **kwargs: object) -> Spawned:
        log = tmp_path / f"spawned-{len(started)}.log"
        process = Spawned(args, log, **kwargs)
        started.append(process)
        return process

    yield _spawn
    leaks: list[str] = []
    for process in started:
        still_running = process.popen.poll() is None
        leftovers = process.cleanup()
        if still_running or leftovers:
            leaks.append(f"{process.args!r}: main running={still_running}, left {leftovers}")
    if leaks:
        outputs = "\n".join(f"--- {p.args!r}\n{p.output}" for p in started)
        pytest.fail("processes leaked:\n" + "\n".join(leaks) + "\n" + outputs)


@pytest.fixture(scope="session")
def watchman_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchmanDaemon]:
    """Start an isolated Watchman for the session and export WATCHMAN_SOCK to the code under test.

    Where the daemon cannot start the Watchman tests skip with the reason, except under CI (the
    CI variable is set), where they fail: CI installs the daemon, so a skip there would hide a bug.
    """
    # Socket paths are limited to about 100 bytes, so the daemon lives in a short directory.
    directory = Path(tmp_path_factory.mktemp("wm", numbered=True))
    daemon = WatchmanDaemon(directory)
    try:
        daemon.start()
    except (RuntimeError, AssertionError, OSError) as exc:
        daemon.stop()
        if os.environ.get("CI"):
            pytest.fail(f"the Watchman daemon could not start under CI: {exc}")
        pytest.skip(f"the Watchman daemon could not start: {exc}")
    previous = os.environ.get("WATCHMAN_SOCK")
    os.environ["WATCHMAN_SOCK"] = str(daemon.sockname)
    try:
        yield daemon
    finally:
        if previous is None:
            os.environ.pop("WATCHMAN_SOCK", None)
        else:
            os.environ["WATCHMAN_SOCK"] = previous
        daemon.stop()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A watched directory holding app.py (modules with trees of their own define `tree`)."""
    root = tmp_path / "tree"
    root.mkdir()
    (root / "app.py").write_text("print('app')\n")
    return root


@pytest.fixture(params=["stat", "watchman"])
def backend(request: pytest.FixtureRequest) -> str:
    """Run a behavioural test against both backends; the watchman one gets its own daemon."""
    name: str = request.param
    if name == "watchman":
        request.getfixturevalue("watchman_daemon")
    return name


def pytest_report_header() -> str:
    return f"watchman: {shutil.which('watchman') or 'not installed'}; started {time.ctime()}"


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
