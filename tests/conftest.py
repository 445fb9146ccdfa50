from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.support import Spawned, wait_for


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


class WatchmanDaemon:
    """An isolated Watchman: its own socket, state file, log and pid file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sockname = directory / "sock"
        self.statefile = directory / "state"
        self.logfile = directory / "log"
        self.pidfile = directory / "pid"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20) -> None:
        binary = shutil.which("watchman")
        if binary is None:
            raise RuntimeError("watchman is not on PATH; ./scripts/test installs it")
        for stale in (self.sockname, self.pidfile):
            stale.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--foreground",
                f"--sockname={self.sockname}",
                f"--statefile={self.statefile}",
                f"--logfile={self.logfile}",
                f"--pidfile={self.pidfile}",
                "--log-level=1",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self.responds, timeout_s=timeout_s, interval_s=0.05, message="watchman to answer")

    def responds(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"watchman exited; its log:\n{self.log()}")
        if not self.sockname.exists():
            return False
        result = subprocess.run(
            ["watchman", f"--sockname={self.sockname}", "--no-spawn", "version"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        """Kill the daemon abruptly, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
        self.sockname.unlink(missing_ok=True)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""


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


@pytest.fixture(params=["stat", "watchman"])
def backend(request: pytest.FixtureRequest) -> str:
    """Run a behavioural test against both backends; the watchman one gets its own daemon."""
    name: str = request.param
    if name == "watchman":
        request.getfixturevalue("watchman_daemon")
    return name


def pytest_report_header() -> str:
    return f"watchman: {shutil.which('watchman') or 'not installed'}; started {time.ctime()}"
