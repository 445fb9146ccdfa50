"""The terminal for the child, as under a shell: the mechanics only (the Supervisor decides).

**Design: the child's own process group is put in front** of the terminal, as a job-control shell
does (glibc manual, "Implementing a Job Control Shell"): `tcsetpgrp` to the child's group with
SIGTTOU blocked (`hand_to`), and back to ours after every child (`take_back`). The other design,
keeping the child in watchreload's group (Django, hupper, watchfiles), was not chosen because:

- `killpg` stays the one way to stop the whole tree, on every POSIX system. The other design
  finds the tree with PR_SET_CHILD_SUBREAPER and /proc/<pid>/task/<tid>/children: Linux only
  (macOS has neither, so an orphaned grandchild would survive a restart there), and a walk that
  races with fork.
- A child that shares our group can stop us: `trap 'kill 0' EXIT` in a dev script, or a tool that
  cleans up "its" group, would end watchreload at every restart.
- The child gets what a shell gives it: Ctrl-C, Ctrl-\\, SIGWINCH, its own terminal modes.

**The Ctrl-C rule.** With the child in front, the terminal signals the child's group only, and
watchreload must still end on one Ctrl-C when the child catches SIGINT and exits 0 (Django's
runserver). "The child died of SIGINT" (Cracauer's wait-and-cooperative-exit) misses exactly that
child; a shell can use it only because it shares the group and sees the SIGINT itself. Nothing else
records a VINTR: the line discipline consumes the character and /proc shows only pending signals.
So the child's group holds a *witness* (`GroupWitness`), started right after the child and so
before the terminal is handed over: a `/bin/sh` (1 ms, 2 MB) that never touches the terminal, with
SIGINT, SIGQUIT and SIGHUP at the defaults exec gives them (no window: a Python witness would turn a
Ctrl-C during its start-up into an exit status 1) and the stop signals ignored. Whatever the
terminal sends to the foreground group kills it too, and its status (-SIGINT) tells `signalled()`
that the keyboard was used, whatever the child did. Timing: the terminal signals every member of
the group in one pass under the kernel's tasklist lock, and no process becomes a reapable zombie
before that pass ends (exit_notify takes the lock for writing); so once the child's exit is seen,
the witness has the signal pending, and `signalled(settle_s)` waits for it only when /proc shows a
signal pending (elsewhere it waits up to settle_s).

**Parent death.** The witness also reads a pipe whose only writer is watchreload. When watchreload
dies, even by SIGKILL, the read sees EOF and the witness SIGKILLs the whole group, grandchildren
included, on every POSIX system (no PR_SET_PDEATHSIG, which is Linux only and would cost an exec
wrapper on every restart). So the witness guards the group on a terminal and off it: it belongs to
the child (process.ChildProcess with `guard`), lives as long as the group does, and is stopped
before watchreload signals the group itself. Its limit is that of any group kill: a process that
leaves the group (`setsid`, `setpgid`) escapes it.

Limits: the witness sees what is sent to the whole group, so a command that moves its own job to
another group (an interactive shell as the command) takes Ctrl-C with it, unseen; between the
witness's stop and `take_back()` (a restart's grace period) a Ctrl-C reaches only the dying child;
Ctrl-C at a pdb prompt ends watchreload too, as the rule says (pdb survives the key: the
supervisor stops it once the stop timeout has passed). Call everything from the thread
that spawns the child (the main thread): the SIGTTOU block is per thread.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import subprocess
import termios
from collections.abc import Iterator
from typing import Any, Protocol

from watchreload.procfs import group_exists, signal_pending

logger = logging.getLogger(__name__)

KILL_WAIT_S = 5.0  # how long to wait for a SIGKILLed witness

# The witness, a POSIX sh: SIGINT, SIGQUIT, SIGHUP stay at the defaults exec gives them, so it dies
# of whatever the terminal sends to the group from its first instruction on; the stop signals are
# ignored. When the pipe from watchreload (its stdin) reaches EOF, watchreload has died: it then
# SIGKILLs its process group, the child's.
_WITNESS = ["/bin/sh", "-c", "trap '' TSTP TTIN TTOU; read -r line; kill -KILL 0"]


@contextlib.contextmanager
def sigttou_blocked() -> Iterator[None]:
    """Block SIGTTOU in this thread: tcsetpgrp/tcsetattr from the background then just work."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _resumable_by_a_shell() -> bool:
    """True when our parent is a job-control shell that can `fg` us after we stop ourselves.

    That is, it is in our session but in another process group; otherwise our group is (likely)
    orphaned and nobody would continue us, so a Ctrl-Z is ignored, as the kernel discards SIGTSTP
    for an orphaned group.
    """
    parent = os.getppid()
    try:
        return os.getsid(parent) == os.getsid(0) and os.getpgid(parent) != os.getpgrp()
    except OSError:
        return False


class StopReporter(Protocol):
    """A child that is not our Popen (preload's ForkedChild): its own report of a stop."""

    @property
    def pid(self) -> int: ...

    def collect_stop(self) -> int | None: ...


def collect_stop(child: subprocess.Popen[Any]) -> int | None:
    """The signal that stopped `child`, collecting only that report; None when it is not stopped.

    waitid(WSTOPPED) without WEXITED never collects an exit, so Popen stays the one reaper of the
    exit status. macOS has no waitid: there waitpid(WUNTRACED) may collect the exit as well, and
    then hands it to Popen through `returncode`.
    """
    if hasattr(os, "waitid"):
        try:
            info = os.waitid(os.P_PID, child.pid, os.WSTOPPED | os.WNOHANG)
        except ChildProcessError:
            return None
        return info.si_status if info is not None and info.si_code == os.CLD_STOPPED else None
    if child.returncode is not None:
        return None
    try:
        pid, status = os.waitpid(child.pid, os.WUNTRACED | os.WNOHANG)
    except ChildProcessError:
        return None
    if pid == 0:
        return None
    if os.WIFSTOPPED(status):
        return os.WSTOPSIG(status)
    child.returncode = os.waitstatus_to_exitcode(status)
    return None


def terminal_gone(fd: int) -> bool:
    """True after a hang-up (the terminal is gone), False while it is there (`kill -HUP`)."""
    try:
        os.tcgetpgrp(fd)
    except OSError as exc:
        return exc.errno in (errno.EIO, errno.ENXIO, errno.ENOTTY, errno.EBADF)
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError as exc:
        return exc.errno in (errno.EIO, errno.ENXIO)
    return False


class GroupWitness:
    """The witness (see above) in group `pgid`, on a terminal or off it: at EOF it kills the group.

    Start it right after the group's leader, before the terminal is handed over; stop it before
    signalling the group yourself (its death would read as a keyboard signal).
    """

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self._signal: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        read_end, write_end = os.pipe()
        self._pipe: int | None = write_end  # only watchreload holds it
        try:
            self._process = subprocess.Popen(
                _WITNESS,
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                process_group=pgid,
            )
        except OSError as exc:  # the group has already gone: the child is dead
            logger.debug("no witness for group %d: %s", pgid, exc)
        finally:
            os.close(read_end)

    def signalled(self, settle_s: float = 0.0) -> int | None:
        """The signal that killed the witness (sent to the group), or None; it looks at once.

        Pass settle_s once the child has exited: a signal already pending for the witness is then
        waited for, up to settle_s.
        """
        process = self._process
        if process is not None and process.poll() is None and settle_s > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                if signal_pending(process.pid):
                    process.wait(settle_s)
        if process is not None and process.returncode is not None and process.returncode < 0:
            self._signal = -process.returncode
        return self._signal

    def stop(self) -> None:
        """Kill the witness, keeping what killed it before; then close the pipe."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            try:
                process.wait(KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                logger.warning("the witness %d survived SIGKILL", process.pid)
        elif process is not None and process.returncode is not None and process.returncode < 0:
            self._signal = -process.returncode
        if self._pipe is not None:
            os.close(self._pipe)  # only once the witness is dead: at EOF it kills the group
            self._pipe = None


class ForegroundTerminal:
    """The controlling terminal, in front of which watchreload runs; lends it to each child."""

    def __init__(self, fd: int) -> None:
        self.fd = fd  # /dev/tty, opened by detect()
        self._saved: list[Any] | None = None
        self._child_modes: list[Any] | None = None
        self._pgid: int | None = None

    @classmethod
    def detect(cls, stdin_fd: int = 0) -> ForegroundTerminal | None:
        """The terminal, when `stdin_fd` is our controlling terminal and we are in front of it.

        None (keep today's behaviour) off a terminal, without a controlling terminal (`docker
        run` without `-t`, setsid, nohup with stdin redirected) or when started in the background.
        """
        try:
            if not os.isatty(stdin_fd):
                return None
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            return None
        try:  # tcgetpgrp fails with ENOTTY on a terminal that is not our controlling one
            usable = os.tcgetpgrp(stdin_fd) == os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            usable = False
        if not usable:
            os.close(fd)
            return None
        return cls(fd)

    def save(self) -> None:
        """Remember the terminal modes to restore after every child (call once, at start)."""
        self._saved = termios.tcgetattr(self.fd)

    def close(self) -> None:
        """At exit: close /dev/tty (call take_back first)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)

    # -- lending the terminal -----------------------------------------------------------------

    def hand_to(self, pgid: int) -> bool:
        """Put the child's group in front and continue it; False when we are not in front.

        Start the group's GroupWitness first, so that no Ctrl-C can reach the group unseen.
        """
        if self._pgid != pgid:
            self._pgid, self._child_modes = pgid, None
        if not self._may_take(pgid):
            return False
        try:
            with sigttou_blocked():
                if self._child_modes is not None:
                    termios.tcsetattr(self.fd, termios.TCSADRAIN, self._child_modes)
                os.tcsetpgrp(self.fd, pgid)
        except (OSError, termios.error) as exc:
            logger.debug("could not give the terminal to group %d: %s", pgid, exc)
            return False
        _signal_group(pgid, signal.SIGCONT)  # it may have read (and stopped) before we got here
        return True

    def take_back(self, flush_input: bool = False) -> None:
        """After the child: the terminal in front of us again, with the modes saved at start.

        Pass flush_input=True when watchreload stopped the child: the keys typed for it (for a
        dead pdb) are dropped. Does nothing when the terminal is gone or someone else (the shell,
        after `bg`) is in front.
        """
        pgid, self._pgid, self._child_modes = self._pgid, None, None
        if not self._may_take(pgid):
            return
        try:
            self._take()
            if flush_input:
                termios.tcflush(self.fd, termios.TCIFLUSH)
        except (OSError, termios.error) as exc:
            logger.debug("could not take the terminal back: %s", exc)

    def _take(self) -> None:
        with sigttou_blocked():
            os.tcsetpgrp(self.fd, os.getpgrp())
            if self._saved is not None:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def _foreground(self) -> int | None:
        try:
            return os.tcgetpgrp(self.fd)
        except OSError:
            return None

    def _may_take(self, pgid: int | None) -> bool:
        """True when the terminal is ours, the child's, or its front group has gone."""
        front = self._foreground()
        if front is None:
            return False
        return front in (os.getpgrp(), pgid) or front <= 0 or not group_exists(front)

    # -- stops: Ctrl-Z, and reads before the hand-over ------------------------------------------

    def follow_stop(self, child: subprocess.Popen[Any] | StopReporter) -> int | None:
        """If the child has stopped, act as a shell would; return the stop signal, else None.

        SIGTTIN/SIGTTOU (it used the terminal while not in front): hand it over again and
        continue it. Any other stop (Ctrl-Z): take the terminal back and stop watchreload, so
        that the shell sees the job stopped; on `fg`, give the child its modes and the terminal
        and continue it (on `bg`, continue it in the background).
        """
        stop = collect_stop(child) if isinstance(child, subprocess.Popen) else child.collect_stop()
        if stop is None:
            return None
        pgid = self._pgid if self._pgid is not None else child.pid
        logger.debug("child %d stopped by %s", child.pid, signal.Signals(stop).name)
        if stop in (signal.SIGTTIN, signal.SIGTTOU) and self.hand_to(pgid):
            return stop
        self._suspend(pgid)
        return stop

    def _suspend(self, pgid: int) -> None:
        if not _resumable_by_a_shell():
            logger.debug("no job-control shell would continue us; continuing the child")
            self.hand_to(pgid)
            return
        if self._foreground() == pgid:
            with contextlib.suppress(termios.error):
                self._child_modes = termios.tcgetattr(self.fd)
            try:
                self._take()
            except (OSError, termios.error) as exc:
                logger.debug("could not take the terminal back: %s", exc)
        os.kill(os.getpid(), signal.SIGSTOP)
        # Continued: by `fg` (we are in front again) or `bg` (we are not).
        if not self.hand_to(pgid):
            _signal_group(pgid, signal.SIGCONT)

    def hung_up(self) -> bool:
        """True after a hang-up of the terminal, False while it is there (a `kill -HUP`)."""
        return terminal_gone(self.fd)
