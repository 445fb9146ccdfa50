"""Processes the harness starts: each in a session of its own, always killed, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")


class Deadline(Exception):
    """A bounded wait ran out."""


def wait_until(
    condition: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.01
) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise Deadline(f"timed out after {timeout_s:.1f}s waiting for {what}")
        time.sleep(interval_s)


def kill_group(pgid: int, grace_s: float = 3.0) -> None:
    """SIGTERM the process group we created, then SIGKILL whatever is left after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    """True for a live process that is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def peak_rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Spawned:
    """A process in a session of its own. Lines of its stdout are collected by a thread."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        capture_stdout: bool = True,
    ) -> None:
        self.args = list(args)
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.popen = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else self._log,
            stderr=self._log,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        self._reader: threading.Thread | None = None
        if capture_stdout:
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)

    def snapshot(self, start: int = 0) -> list[str]:
        with self._lock:
            return self.lines[start:]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace_s: float = 3.0) -> int | None:
        """Stop the whole session (its process group); return the exit code."""
        try:
            kill_group(self.pid, grace_s)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace_s)
        finally:
            if self._reader is not None:
                self._reader.join(grace_s)
            if self.popen.stdout is not None:
                self.popen.stdout.close()
            self._log.close()
        return self.popen.returncode

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class WatchmanDaemon:
    """An isolated watchman daemon: its own socket, state, log and pid files, stopped after use."""

    def __init__(self, state_dir: Path, binary: str = "/usr/bin/watchman") -> None:
        self.state_dir = state_dir
        self.binary = binary
        self.sockname = str(state_dir / "sock")
        self.proc: Spawned | None = None

    def start(self, timeout_s: float = 20.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for name in ("sock", "state", "pid"):
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / name).unlink()
        self.proc = Spawned(
            [
                self.binary,
                "--foreground",
                f"--sockname={self.sockname}",
                f"--statefile={self.state_dir / 'state'}",
                f"--logfile={self.state_dir / 'log'}",
                f"--pidfile={self.state_dir / 'pid'}",
            ],
            log_path=self.state_dir / "stderr",
            capture_stdout=False,
        )
        wait_until(self._answers, timeout_s, "the watchman daemon to answer", interval_s=0.05)

    def _answers(self) -> bool:
        if self.proc is None or not self.proc.alive():
            raise RuntimeError(f"watchman exited early; see {self.state_dir / 'log'}")
        if not os.path.exists(self.sockname):
            return False
        done = subprocess.run(
            [self.binary, f"--sockname={self.sockname}", "--no-spawn", "version"],
            capture_output=True,
            timeout=10,
        )
        return done.returncode == 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def version(self) -> str:
        done = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, timeout=10
        )
        return done.stdout.strip()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None


@contextlib.contextmanager
def watchman_daemon(state_dir: Path) -> Iterator[WatchmanDaemon]:
    daemon = WatchmanDaemon(state_dir)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
