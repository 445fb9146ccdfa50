"""Did a forked child crash where an exec'd one would not? Then run it by exec to compare.

A crash here is death by a fatal signal (SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE): what a native
library whose state did not survive fork() does. A Python exception is the program's own error
(its traceback says where), shown once, and forking goes on: comparing every failed start by
running it twice would print each traceback twice and repeat its side effects.

`CrashJudge` hears how each child ended: its returncode (None when the supervisor stopped it for
a restart) and how long it ran. After a forked crash, the next start runs by exec, at once. That
exec'd child decides: killed by a fatal signal as well, the program itself crashes (forking goes
on); running longer than the forked child did without such a death (still running, stopped for a
restart after that, or exited otherwise), the fork was at fault and preloading is off for this
module set (`disabled`); stopped for a restart before that, nothing is known yet (the next
forked crash compares again).
"""

from __future__ import annotations

import signal

from watchreload.process import describe_status

FATAL_SIGNALS = frozenset(
    int(s) for s in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE)
)
MIN_COMPARE_S = 1.0  # an exec'd child that compares has run long enough after this (at least)


def crashed(returncode: int | None) -> bool:
    return returncode is not None and -returncode in FATAL_SIGNALS


class CrashJudge:
    def __init__(self) -> None:
        self.comparing: tuple[str, float] | None = None  # the forked crash, and how long it ran
        self.disabled: str | None = None

    def reason(self) -> str | None:
        """Why the next start must exec (None: the template may serve it)."""
        if self.disabled is not None:
            return self.disabled
        if self.comparing is not None:
            return f"to compare with the forked child that {self.comparing[0]}"
        return None

    def forked_ended(self, returncode: int | None, ran_s: float) -> str | None:
        """A forked child ended; the reason to run it again by exec now, or None."""
        if self.disabled is not None or not crashed(returncode):
            return None
        assert returncode is not None
        self.comparing = (describe_status(returncode), ran_s)
        return f"the forked child {self.comparing[0]}"

    def long_enough(self, ran_s: float) -> bool:
        """The exec'd child that compares has run longer than the forked one did."""
        return self.comparing is not None and ran_s > max(self.comparing[1], MIN_COMPARE_S)

    def exec_running(self, ran_s: float) -> None:
        if self.long_enough(ran_s):
            self._forking_fails()

    def exec_ended(self, returncode: int | None, ran_s: float) -> None:
        if self.comparing is None:
            return
        if crashed(returncode):
            self.comparing = None  # it crashes by exec as well: the program's own crash
        elif returncode is not None or self.long_enough(ran_s):
            self._forking_fails()
        else:
            self.comparing = None  # stopped for a restart too soon to tell

    def _forking_fails(self) -> None:
        assert self.comparing is not None
        self.disabled = (
            f"a forked child {self.comparing[0]} where the exec'd one did not; preloading is "
            "off for this module set"
        )
        self.comparing = None
