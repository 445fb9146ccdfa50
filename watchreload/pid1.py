"""watchreload as a container's first process (PID 1): an init that reaps, as tini does.

The kernel re-parents every orphan of a PID namespace to its PID 1, which must reap it or it
stays a zombie for good; and PID 1 gets no signal it has no handler for, so `docker stop`'s
SIGTERM would do nothing until the SIGKILL. watchreload cannot reap with `waitpid(-1)` itself:
its children are `subprocess.Popen` objects that wait on their own pids, and a reaper in the
same process would take their statuses. So when it finds itself PID 1, watchreload forks first
thing: the parent, still PID 1, only reaps every child and passes the stop signals on to the
real watchreload (its child), and ends with that child's status (128+N if signal N killed it);
the child runs exactly as it would have. The child stays in the same process group and session,
so on a terminal (`docker run -t`) it is as much in the foreground as before; a Ctrl-C that the
terminal sent to the whole group is not passed on a second time.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import NoReturn

from watchreload.process import exit_status as returncode_status

FORWARDED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
SI_KERNEL = 0x80  # siginfo's si_code for a signal the kernel sent (the terminal's Ctrl-C)


def become_init_if_pid1() -> None:
    """When this process is PID 1, fork: the child returns and goes on as watchreload, this
    process stays PID 1 and never returns."""
    if os.getpid() != 1:
        return
    waited = {*FORWARDED_SIGNALS, signal.SIGCHLD}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    child = os.fork()
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return
    reap_and_forward(child, waited)


def reap_and_forward(child: int, waited: set[signal.Signals]) -> NoReturn:
    """Wait for signals (blocked in `waited`): reap every exited process on SIGCHLD, pass the
    others on to `child`; exit with the child's status once it has ended."""
    while True:
        info = signal.sigwaitinfo(waited)
        if info.si_signo != signal.SIGCHLD:
            if info.si_code != SI_KERNEL:  # the terminal sent it to the child's group too
                _send(child, info.si_signo)
            continue
        status = _reap_all(child)
        if status is not None:
            os._exit(exit_status(status))


def _reap_all(child: int) -> int | None:
    """Reap every process that has exited; the wait status of `child` if it was among them."""
    child_status = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return child_status
        if pid == 0:
            return child_status
        if pid == child:
            child_status = status


def exit_status(wait_status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+N for signal N."""
    return returncode_status(os.waitstatus_to_exitcode(wait_status))


def _send(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has just exited: SIGCHLD follows
        os.kill(pid, signum)
