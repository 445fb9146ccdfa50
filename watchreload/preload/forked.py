"""A child forked by the template, with `ChildProcess`'s contract: `pid`, `poll()`, `wait()`,
`running()`, `send_signal()`, `stopped_by()`, `collect_stop()`, `group_signal()`,
`stop(signal, timeout_s)`.

It is the template's child: its returncode arrives from the template (`Reports.statuses`), and
the supervisor signals its process group directly. A stop sends the stop signal and SIGCONT to
the group, waits up to the stop timeout, sends SIGKILL, and waits again, boundedly, as
`ChildProcess.stop` does. If the template dies, so does the child (its parent-death signal):
it is reaped here when this process adopted it (a child subreaper); otherwise that is said once,
and reported as SIGKILL.

With `guard`, a terminal.GroupWitness joins its group as it joins an exec'd child's (the template
kills its children when watchreload dies; the witness tells which signal the terminal sent).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Protocol

from watchreload.process import STOP_POLL_S, STOP_TIMEOUT_S, stop_boundedly
from watchreload.procfs import group_alive, read_stat
from watchreload.terminal import GroupWitness

logger = logging.getLogger(__name__)


class Reports(Protocol):
    """What a ForkedChild needs of its Template."""

    @property
    def state(self) -> str: ...

    @property
    def statuses(self) -> dict[int, int]: ...

    @property
    def stops(self) -> dict[int, int | None]: ...

    @property
    def stop_events(self) -> dict[int, list[int]]: ...

    def pump(self, timeout_s: float = 0.0) -> None: ...


def _never() -> bool:
    return False


class ForkedChild:
    """A child forked by the template, with `ChildProcess`'s contract (always its own group)."""

    def __init__(self, template: Reports, pid: int, name: str, *, guard: bool = False) -> None:
        self.template = template
        self.pid = pid
        self.name = name
        self.own_group = True
        self.returncode: int | None = None
        self._witness = GroupWitness(pid) if guard else None

    def group_signal(self, settle_s: float = 0.0) -> int | None:
        """As `ChildProcess.group_signal`: the signal sent to the whole group, or None."""
        return None if self._witness is None else self._witness.signalled(settle_s)

    def collect_stop(self) -> int | None:
        """The first stop the template reported since the last look, once (follow_stop)."""
        self.template.pump(0)
        events = self.template.stop_events.get(self.pid)
        return events.pop(0) if events else None

    def poll(self) -> int | None:
        """The child's returncode once it has exited (its group may live on), else None."""
        if self.returncode is None:
            self.template.pump(0)
            self.returncode = self.template.statuses.pop(self.pid, None)
        if self.returncode is None and self.template.state == "gone":
            self.returncode = self._adopted_status()
        return self.returncode

    def _adopted_status(self) -> int | None:
        """With the template gone: reap the child if we adopted it (subreaper), or, once it is
        gone (its parent-death signal is SIGKILL), say it died with the template."""
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            stat = read_stat(self.pid)
            if stat is not None and stat.live:
                return None
            logger.warning("%s was killed with the preloaded template", self.name)
            return -int(signal.SIGKILL)
        if pid == 0:
            return None
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    def stopped_by(self) -> int | None:
        """The signal (SIGTSTP, SIGTTIN...) that holds the child stopped now, if any."""
        self.template.pump(0)
        if self.poll() is not None:
            return None
        return self.template.stops.get(self.pid)

    def wait(self, timeout_s: float | None = None) -> int:
        """Wait for the child itself; raise subprocess.TimeoutExpired after `timeout_s`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.poll() is None:
            left = STOP_POLL_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(self.name, timeout_s or 0)
            self.template.pump(min(left, STOP_POLL_S * 5))
        assert self.returncode is not None
        return self.returncode

    def running(self) -> bool:
        return self.poll() is None or group_alive(self.pid)

    def send_signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def stop(
        self,
        signum: int | None,
        timeout_s: float = STOP_TIMEOUT_S,
        hurry: Callable[[], bool] = _never,
    ) -> int | None:
        """As `ChildProcess.stop`: signal the group, wait, SIGKILL, wait; None if it survived."""
        if self._witness is not None:
            self._witness.stop()  # before we signal the group: its death is no keyboard signal
        result = stop_boundedly(self, signum, timeout_s, hurry)
        self.template.stop_events.pop(self.pid, None)
        self.template.stops.pop(self.pid, None)
        return result

    def pause(self, seconds: float) -> None:
        """Let `seconds` pass while a stop waits, reading the template's reports meanwhile."""
        self.template.pump(seconds)
