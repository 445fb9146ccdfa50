"""Helpers shared by the tests: bounded waits and processes that are always cleaned up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

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
        self.popen = subprocess.Popen(  # type: ignore[call-overload]
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
