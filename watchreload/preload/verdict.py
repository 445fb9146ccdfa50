"""Did a forked child crash where an exec'd one would not? Then exec the same code to compare.

`CrashJudge` is told how each child ended: its returncode (None when the supervisor stopped it
for a restart: it was working) and how far it got (`progress`: the modules the agent saw it
import, more once it listened). A forked child that fails before getting as far as the best
exec'd child did, or that a fatal signal kills (SIGSEGV, SIGABRT...: what a library broken by
fork() does), is compared at once: the same code is run again by exec. If that exec'd child gets
further, preloading is off for this module set (`disabled`); if it fails as early, the program
itself is broken and forking goes on.

The compare runs the same code, not the next edit's: an edit that fixes the program's own error
would make any later exec'd child look better.
"""

from __future__ import annotations

import signal

from watchreload.process import describe_status

FATAL_SIGNALS = frozenset(
    int(s) for s in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE)
)


class CrashJudge:
    def __init__(self) -> None:
        self.exec_progress: float | None = None  # how far the best exec'd child got
        self.comparing: tuple[str, float] | None = None  # a forked failure, while exec compares
        self.disabled: str | None = None

    def reason(self) -> str | None:
        """Why the next start must exec (None: the template may serve it)."""
        if self.disabled is not None:
            return self.disabled
        if self.comparing is not None:
            return f"to compare with the forked child that {self.comparing[0]}"
        return None

    def forked_ended(self, returncode: int | None, progress: float) -> str | None:
        """A forked child ended; the reason to run the same code by exec now, or None."""
        if returncode is None or returncode == 0 or self.disabled is not None:
            return None
        if returncode < 0 and -returncode not in FATAL_SIGNALS:
            return None  # SIGTERM, SIGKILL...: someone else's doing, not a crash
        earlier = self.exec_progress is not None and progress < self.exec_progress
        if not earlier and returncode > 0:
            return None
        self.comparing = (describe_status(returncode), progress)
        return f"the forked child {self.comparing[0]} early"

    def exec_running(self, progress: float) -> None:
        """The exec'd child that compares has run for a while (the caller's COMPARE_AFTER_S) and
        got `progress` far: as far as the forked child and still alive is further."""
        if self.comparing is not None and progress >= self.comparing[1]:
            self._forking_fails()

    def exec_ended(self, returncode: int | None, progress: float) -> None:
        worked = returncode is None or returncode == 0
        if self.comparing is not None:
            if worked or progress > self.comparing[1]:
                self._forking_fails()
            self.comparing = None
        if worked or self.exec_progress is None or progress > self.exec_progress:
            self.exec_progress = max(progress, self.exec_progress or 0.0)

    def _forking_fails(self) -> None:
        assert self.comparing is not None
        self.disabled = (
            f"a forked child {self.comparing[0]} where the exec'd one did not; preloading is "
            "off for this module set"
        )
        self.comparing = None
