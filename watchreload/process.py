"""Process mechanics for both modes: start a child, stop it boundedly, name exit statuses.

`ChildProcess` is the one start → stop sequence. Command mode starts the command as the leader of
a process group of its own and stops the whole group; library mode starts the program in our group
(so that Ctrl-C in a terminal reaches it too) and stops only that child. Either way a stop sends
the stop signal (or relies on one already delivered), waits up to the stop timeout for everything
to exit, sends SIGKILL, and waits again, boundedly.

`watching()` is the one "start the watcher, start the program once it is ready" sequence.

What a process (or a group) is doing now is read from /proc by procfs.py, not here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import FrameType
from typing import Protocol

from watchreload.errors import CommandNotExecutable, CommandNotFound
from watchreload.procfs import group_alive
from watchreload.progress import progress
from watchreload.terminal import GroupWitness, collect_stop

logger = logging.getLogger(__name__)

# Timeouts, declared once for both modes.
STOP_TIMEOUT_S = 5.0  # from the stop signal to SIGKILL
KILL_WAIT_S = 5.0  # how long to wait for a SIGKILLed child or group before giving up on it
STOP_POLL_S = 0.02  # how often a stop looks at the child, and whether it is asked to hurry
STOP_FIRST_POLL_S = 0.002  # the first looks come sooner (most children go at once), then double
READY_TIMEOUT_S = 30.0  # start the program anyway if the watcher is not live by then
WAIT_REPORT_AFTER_S = 1.0  # say what the watcher is waiting for once the wait is this long
WAIT_REPORT_EVERY_S = 1.0  # and update that line (in place on a terminal) this often
WATCHER_JOIN_TIMEOUT_S = 2.0  # how long to wait for the watcher thread once it is asked to stop


# -- exit statuses ----------------------------------------------------------------------------


def exit_status(returncode: int) -> int:
    """A Popen returncode as a shell reports it: the code, or 128 + N for signal N."""
    return 128 - returncode if returncode < 0 else returncode


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_status(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal_name(-returncode)}"
    return f"exited with status {returncode}"


def command_text(args: Sequence[str]) -> str:
    """A command as a log line shows it: quoted, and cut at 60 characters."""
    text = " ".join(args)
    return repr(text if len(text) <= 60 else text[:57] + "...")


# -- a child ----------------------------------------------------------------------------------


def _never() -> bool:
    return False


class ChildProcess:
    """One child process: `start()`, `wait()`, `stop(signal, timeout_s)`.

    With `own_group` the child leads a new process group, and signals, `running()` and `stop()`
    cover every process in that group (grandchildren included); otherwise only the child.

    With `guard` too, a terminal.GroupWitness joins the group right after the child starts and
    stays as long as the group does (its stop comes first in `stop()`): when watchreload dies, even
    by SIGKILL, it kills the whole group, on every POSIX system; on a terminal it also tells which
    signal the terminal sent the group (`group_signal()`). A process that leaves the group
    (`setsid`) escapes it, as it escapes every group kill.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        own_group: bool = True,
        shell: bool = False,
        close_fds: bool = True,
        guard: bool = False,
    ) -> None:
        self.args = list(args)
        self.env = None if env is None else dict(env)
        self.own_group = own_group
        self.guard = guard and own_group
        self.shell = shell
        self.close_fds = close_fds
        self.name = command_text(self.args)
        self._popen: subprocess.Popen[bytes] | None = None
        self._witness: GroupWitness | None = None

    @property
    def pid(self) -> int:
        return self._started().pid

    def _started(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was not started; call start() first")
        return self._popen

    def start(self) -> None:
        """Start the child; raise CommandNotFound or CommandNotExecutable when it can't be run."""
        args: str | list[str] = " ".join(self.args) if self.shell else self.args
        program = self.args[0]
        try:
            self._popen = subprocess.Popen(
                args,
                shell=self.shell,
                env=self.env,
                close_fds=self.close_fds,
                process_group=0 if self.own_group else None,
            )
        except FileNotFoundError as exc:
            raise CommandNotFound(
                f"command {program!r} not found; check the spelling or pass its full path"
            ) from exc
        except PermissionError as exc:
            raise CommandNotExecutable(
                f"command {program!r} cannot be run ({exc.strerror}); check its permissions"
            ) from exc
        except OSError as exc:  # e.g. ENOEXEC: a script without a #! line
            raise CommandNotExecutable(
                f"command {program!r} cannot be started ({exc.strerror or exc}); "
                "run it through its interpreter"
            ) from exc
        logger.debug("started %s as pid %d", self.args, self._popen.pid)
        if self.guard:
            self._witness = GroupWitness(self._popen.pid)

    def group_signal(self, settle_s: float = 0.0) -> int | None:
        """The signal sent to the child's whole group (by the terminal: SIGINT...), or None.

        Only with `guard`; pass settle_s once the child has exited (GroupWitness.signalled).
        """
        return None if self._witness is None else self._witness.signalled(settle_s)

    def _unguard(self) -> None:
        """Stop the witness: before we signal the group ourselves, and once it is gone."""
        if self._witness is not None:
            self._witness.stop()

    def poll(self) -> int | None:
        """The child's returncode once it has exited (its group may live on), else None."""
        return self._started().poll()

    def wait(self, timeout_s: float | None = None) -> int:
        """Wait for the child itself; raise subprocess.TimeoutExpired after `timeout_s`."""
        return self._started().wait(timeout_s)

    def running(self) -> bool:
        """True while the child runs, or with `own_group` while anything in its group does."""
        popen = self._started()
        return popen.poll() is None or (self.own_group and group_alive(popen.pid))

    def send_signal(self, signum: int) -> None:
        """Signal the group (with `own_group`) or the child; nothing if it is gone."""
        popen = self._started()
        if self.own_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signum)
        else:
            popen.send_signal(signum)  # Popen does nothing once it has reaped the child

    def collect_stop(self) -> int | None:
        """The signal that stopped the child since the last look, once (terminal.follow_stop)."""
        return collect_stop(self._started())

    def stopped_by(self) -> int | None:
        """The signal (SIGTTIN, SIGSTOP...) that holds the child stopped now, if any.

        It only looks (WNOWAIT), so that Popen still collects the exit status later.
        """
        popen = self._started()
        if popen.returncode is not None or not hasattr(os, "waitid"):
            return None
        try:
            info = os.waitid(os.P_PID, popen.pid, os.WSTOPPED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return None
        if info is None or info.si_code != os.CLD_STOPPED:
            return None
        return info.si_status

    def stop(
        self,
        signum: int | None,
        timeout_s: float = STOP_TIMEOUT_S,
        hurry: Callable[[], bool] = _never,
    ) -> int | None:
        """Stop the child (and its group) boundedly; return its returncode, None if it survived.

        Send `signum` (None: it has been delivered already, as Ctrl-C in a terminal is), wait up
        to `timeout_s` for everything to exit, then SIGKILL and wait up to KILL_WAIT_S. The grace
        period ends early once `hurry()` is true or on KeyboardInterrupt (asked twice).
        """
        self._started()
        self._unguard()
        return stop_boundedly(self, signum, timeout_s, hurry)

    def pause(self, seconds: float) -> None:
        """Let `seconds` pass while a stop waits (stop_boundedly)."""
        time.sleep(seconds)


class Stoppable(Protocol):
    """What stop_boundedly() needs of a child: ChildProcess, or preload's ForkedChild."""

    name: str

    @property
    def pid(self) -> int: ...

    def running(self) -> bool: ...

    def send_signal(self, signum: int) -> None: ...

    def wait(self, timeout_s: float | None = None) -> int: ...

    def pause(self, seconds: float) -> None: ...


def stop_boundedly(
    child: Stoppable, signum: int | None, timeout_s: float, hurry: Callable[[], bool] = _never
) -> int | None:
    """The one stop sequence: `signum` and SIGCONT (none when already delivered), up to
    `timeout_s` for everything to exit, then SIGKILL and up to KILL_WAIT_S; the returncode, None
    if the child survived. The grace period ends early once `hurry()` is true or on
    KeyboardInterrupt (asked twice)."""
    if child.running():
        if signum is not None:
            child.send_signal(signum)
            child.send_signal(signal.SIGCONT)  # a stopped process acts on it only now
        hurried = _wait_until_gone(child, timeout_s, hurry)
        if child.running():
            if hurried:
                logger.info("asked to stop again; sending SIGKILL to %s", child.name)
            else:
                after = "" if signum is None else f" of {signal_name(signum)}"
                logger.info(
                    "%s did not stop within %gs%s; sending SIGKILL", child.name, timeout_s, after
                )
            child.send_signal(signal.SIGKILL)
            _wait_until_gone(child, KILL_WAIT_S, _never)
    try:
        return child.wait(KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        logger.warning("pid %d survived SIGKILL; giving up on it", child.pid)
        return None


def _wait_until_gone(child: Stoppable, timeout_s: float, hurry: Callable[[], bool]) -> bool:
    """Wait until nothing is running or `timeout_s` passed; True if told to hurry first."""
    deadline = time.monotonic() + timeout_s
    interval = STOP_FIRST_POLL_S
    try:
        while child.running() and time.monotonic() < deadline:
            if hurry():
                return True
            child.pause(interval)
            interval = min(interval * 2, STOP_POLL_S)
    except KeyboardInterrupt:
        return True
    return False


# -- signals ---------------------------------------------------------------------------------


@contextlib.contextmanager
def signals_handled(handlers: Mapping[int, Callable[[int], None]]) -> Iterator[None]:
    """Call `handlers[signum](signum)` on those signals inside the block; restore at its end.

    Only the main thread can install handlers: elsewhere this installs none.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def make(handler: Callable[[int], None]) -> Callable[[int, FrameType | None], None]:
        return lambda signum, _frame: handler(signum)

    previous = {signum: signal.signal(signum, make(h)) for signum, h in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# -- the watcher the program starts behind -------------------------------------------------------


class Watcher(Protocol):
    """What `watching()` needs of a reloader.

    A watcher may also say what it is waiting for while it gets ready, as a `waiting_for` string
    ("Watchman's first crawl of /repo (once per daemon)"; "" when nothing in particular): the
    backends do, BaseReloader does not declare it.
    """

    @property
    def name(self) -> str: ...

    @property
    def error(self) -> BaseException | None: ...

    @property
    def should_stop(self) -> bool: ...

    def start(self) -> None: ...

    def wait_until_ready(self, timeout_s: float) -> bool: ...

    def stop(self) -> None: ...

    def join(self, timeout_s: float | None = None) -> None: ...


@contextlib.contextmanager
def watching(watcher: Watcher, starting: str) -> Iterator[None]:
    """Start `watcher`, enter once it is ready (or after READY_TIMEOUT_S), stop and join it at exit.

    What the block starts then sees no edit missed from its first moment; but a slow or broken
    watcher must not hold it back for long (a failed one is reported by whoever reads its batches).
    `starting` names what the block starts, for the warning.
    """
    watcher.start()
    try:
        _wait_until_ready(watcher, starting)
        yield
    finally:
        watcher.stop()
        watcher.join(WATCHER_JOIN_TIMEOUT_S)


def _wait_until_ready(watcher: Watcher, starting: str) -> None:
    """Wait for the watcher; past WAIT_REPORT_AFTER_S say what for, as a progress record that
    the CLI rewrites in place each second, and then how long it took."""
    started = time.monotonic()
    deadline = started + READY_TIMEOUT_S
    next_report = started + WAIT_REPORT_AFTER_S
    reported = False
    while True:
        step = max(0.0, min(deadline, next_report) - time.monotonic())
        if watcher.wait_until_ready(step):
            break
        now = time.monotonic()
        if watcher.error is not None or watcher.should_stop:
            return  # whoever reads its batches reports the failure
        if now >= deadline:
            logger.warning(
                "the %s watcher is still not ready after %gs; starting %s anyway",
                watcher.name,
                READY_TIMEOUT_S,
                starting,
            )
            return
        if now >= next_report:
            what = getattr(watcher, "waiting_for", "") or f"the {watcher.name} watcher"
            logger.info(
                "waiting for %s; %.0f s so far", what, now - started, extra=progress("watching")
            )
            reported = True
            next_report = now + WAIT_REPORT_EVERY_S
    if reported:
        logger.info("watching after %.1f s; starting %s", time.monotonic() - started, starting)
