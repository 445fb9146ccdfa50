"""Helpers shared by the tests: bounded waits, processes that are always cleaned up, an isolated
Watchman daemon and readers of a reloader's batches. Fixtures live in conftest.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from watchreload.changes import ChangeSet
from watchreload.reloaders.watchman import WatchmanReloader

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 15.0


def wait_for(
    condition: Callable[[], T],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {message}")
        time.sleep(interval_s)


def stays(condition: Callable[[], object], duration_s: float, interval_s: float = 0.02) -> bool:
    """True when `condition` holds at every poll for `duration_s` (to show that nothing happens)."""
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(interval_s)
    return bool(condition())


def session_members(session_id: int) -> list[int]:
    """Pids of live (non-zombie) processes in a session, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == session_id and state != "Z":
            members.append(int(entry))
    return members


class Spawned:
    """A process started in a session of its own, so that everything it starts can be found."""

    def __init__(self, args: Sequence[str], log_path: Path, **kwargs: object) -> None:
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in cleanup()
        self.popen: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
        self.pid: int = self.popen.pid

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send_signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
        return self.popen.wait(timeout_s)

    def session_members(self) -> list[int]:
        return session_members(self.pid)

    def cleanup(self) -> list[int]:
        """Kill whatever is left in the session; return the pids that were still alive."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(DEFAULT_TIMEOUT_S)
        leftovers = self.session_members()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log.close()
        return leftovers


PYTHON = sys.executable


def without_file_privileges(args: Sequence[str]) -> list[str]:
    """Prefix a command so that it runs subject to file permissions, even when we are root.

    root bypasses permission bits through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH; util-linux
    setpriv drops them from the bounding set, so an unreadable directory is unreadable for real.
    """
    if os.geteuid() != 0:
        return list(args)
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *args]


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
        # --no-local: Watchman 4.9 answers `version` from the client itself when no daemon
        # listens; this asks the daemon.
        result = subprocess.run(
            ["watchman", f"--sockname={self.sockname}", "--no-spawn", "--no-local", "version"],
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

    def kill(self, *, keep_socket: bool = False) -> None:
        """Kill the daemon abruptly, as a crash would (`kill -9` leaves its socket file behind:
        `keep_socket`)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
        if not keep_socket:
            self.sockname.unlink(missing_ok=True)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""


StartWatchman = Callable[..., WatchmanReloader]


def make_tree(root: Path, files: int, per_directory: int = 1000, distinct: int = 100) -> list[Path]:
    """Write `files` small .py files under `root`, `per_directory` to a directory; return their
    paths. The first `distinct` are files of their own, edit only those: the others are hard
    links to their directory's `_template.txt` (which no .py glob matches), because creating
    100,000 files takes a minute on a busy machine and linking them a few seconds."""
    paths = []
    template = root
    for i in range(files):
        directory = root / f"d{i // per_directory:04d}"
        if i % per_directory == 0:
            directory.mkdir(parents=True, exist_ok=True)
            template = directory / "_template.txt"
            template.write_text("N = 0\n")
        path = directory / f"m{i % per_directory:04d}.py"
        if i < distinct:
            path.write_text(f"N = {i}\n")
        else:
            os.link(template, path)
        paths.append(path)
    return paths


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
