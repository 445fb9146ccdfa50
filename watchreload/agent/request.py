"""Asking a supervised Python process for the agent's report now.

The agent reports as a program imports, when it listens, and when it exits; a program that
imports and then waits (a worker, a script in a loop) reports nothing more until it ends. The
bootstrap (bootstrap/sitecustomize.py) makes SIGRTMAX - 3 mean "report now"; watchreload sends it
only to a process that /proc shows catching it, since that signal's default action is to end
the process.
"""

from __future__ import annotations

import contextlib
import os
import signal

from watchreload.procfs import catches_signal

REPORT_SIGNAL_BELOW_MAX = 3  # the bootstrap's; tests/agent/test_bootstrap.py holds them equal
REPORT_SIGNAL: int | None = (
    int(signal.SIGRTMAX) - REPORT_SIGNAL_BELOW_MAX if hasattr(signal, "SIGRTMAX") else None
)


def ask_for_report(pid: int) -> bool:
    """Ask `pid` for its report; False when it has no agent that answers (nothing was sent)."""
    if REPORT_SIGNAL is None or not catches_signal(pid, REPORT_SIGNAL):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, REPORT_SIGNAL)
        return True
    return False
