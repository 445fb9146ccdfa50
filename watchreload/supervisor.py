"""Command mode: when the child starts, restarts, waits and ends, and nothing else.

The supervisor starts the command in a process group of its own and restarts it once per ChangeSet
it reads from a change source (a reloader, or in tests anything with `wait_for_changes()`). How a
child is started and stopped is process.py's; what it is told about changes is command.py's.

- **restart**: stop the child's whole process group (the stop signal, up to the stop timeout, then
  SIGKILL), then start the new child. There are never two children at once, and no grandchild in
  the group survives.
- **the child exits by itself** (crash or exit 0): print its status and wait for the next change
  before starting it again, so a broken program is not restarted in a loop (hupper's WAIT). What
  is left of its process group is stopped at that next restart.
- **SIGINT or SIGTERM to watchreload**: stop the child group the same bounded way (a second
  SIGINT or SIGTERM skips the grace period) and return the child's exit status, as a shell
  reports it: the exit code, or 128 + N when signal N ended it (143 for SIGTERM, 137 for SIGKILL).
  When the child had already exited, its last status is returned.
- **SIGHUP to watchreload**: restart the child now.
- **watchreload dies** (even by SIGKILL): the child's group goes too. Every child is started with
  a guard (process.ChildProcess `guard`, a terminal.GroupWitness in its group) that SIGKILLs the
  group when watchreload's end of its pipe closes.

**In the foreground of a terminal** (a ForegroundTerminal, setting `tty` auto), the terminal is
lent to each child as a shell lends it to a job (terminal.py): its group is put in front, so
input(), pdb and breakpoint() work and Ctrl-C reaches the child, not watchreload.

- **a keyboard signal** (Ctrl-C, Ctrl-\\) that reached the child's group ends watchreload, with no
  restart, whatever the child did with it: the child may end by itself (up to the stop timeout),
  then what is left of its group is stopped as above. The exit status is the shell's answer: 130
  when SIGINT killed the child, the child's own status when it caught SIGINT and exited (Django's
  runserver: 0).
- **Ctrl-Z** stops the child; watchreload takes the terminal back and stops itself, so that the
  shell shows the job stopped; `fg` continues both (terminal.ForegroundTerminal.follow_stop).
- after every child, and before every restart, the terminal is in front of watchreload again with
  the modes saved at start (a child that left it raw or without echo changes nothing).
- **a hang-up** of the terminal (SIGHUP while it is gone) stops the child the bounded way and ends
  watchreload with the child's status (129 when the hang-up killed it); a SIGHUP while the terminal
  is still there (`kill -HUP`) restarts, as above.

Off a terminal, or with setting `tty` never, Ctrl-C in a terminal reaches watchreload only (which
then stops the child as above: the child sees the stop signal, SIGTERM by default, not SIGINT; set
the stop signal to SIGINT for KeyboardInterrupt), and a child that reads the terminal (input(),
pdb) is stopped by SIGTTIN, which watchreload says once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from watchreload.changes import ChangeSet
from watchreload.command import CHANGES_ENV_LIMIT_BYTES, ChangesHandoff, without_changes
from watchreload.errors import CommandError, ReloaderFailed
from watchreload.launcher import Child, ExecLauncher, Launcher
from watchreload.process import (
    STOP_POLL_S,
    STOP_TIMEOUT_S,
    command_text,
    describe_status,
    exit_status,
    signal_name,
    signals_handled,
)
from watchreload.terminal import ForegroundTerminal

logger = logging.getLogger(__name__)

POLL_S = 0.1  # how often the main loop looks at signals and the child while waiting for changes
KEYBOARD_SETTLE_S = 0.5  # after the child's exit, how long a signal pending for the witness takes
KEYBOARD_SIGNALS = (signal.SIGINT, signal.SIGQUIT)  # what the terminal's keys send (not Ctrl-Z)


class ChangeSource(Protocol):
    """What the supervisor reads changes from: a BaseReloader, or a fake in tests."""

    @property
    def error(self) -> BaseException | None: ...

    @property
    def should_stop(self) -> bool: ...

    def wait_for_changes(self, timeout_s: float | None = None) -> ChangeSet | None: ...


class StartHooks(Protocol):
    """What is done around each start besides the start itself (agent/supervised.py)."""

    def environment(
        self, command: Sequence[str], env: Mapping[str, str], *, shell: bool = False
    ) -> dict[str, str]: ...

    def started(self, child: Child, since: float | None) -> None: ...

    def scoped(self, changes: ChangeSet) -> ChangeSet | None: ...

    def poll(self) -> None: ...


def _relative_to_cwd(changes: ChangeSet) -> ChangeSet:
    """The same ChangeSet with paths under the current directory made relative, for display."""
    cwd = os.getcwd()

    def show(path: Path) -> Path:
        relative = os.path.relpath(path, cwd)
        return path if relative.startswith("..") else Path(relative)

    return ChangeSet({show(p): kind for p, kind in changes.changes.items()}, changes.reason)


class Supervisor:
    """Runs `command`, restarting it once per ChangeSet read from a source."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        shell: bool = False,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_timeout_s: float = STOP_TIMEOUT_S,
        on_restart: Callable[[], None] | None = None,
        env: Mapping[str, str] | None = None,
        changes_limit_bytes: int = CHANGES_ENV_LIMIT_BYTES,
        terminal: ForegroundTerminal | None = None,
        hooks: StartHooks | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        self.command = list(command)
        self.shell = shell
        self.stop_signal = stop_signal
        self.stop_timeout_s = stop_timeout_s
        self.on_restart = on_restart
        self.env = without_changes(os.environ if env is None else env)
        self.child: Child | None = None
        self.last_returncode: int | None = None
        self.starts = 0
        self._handoff = ChangesHandoff(changes_limit_bytes)
        self._reported_exit = False
        self._reported_tty_stop = False
        self._stop_signals: list[int] = []  # appended to by signal handlers
        self._restart_requested = False
        self.terminal = terminal  # lent to each child when given
        self._keyboard_signal: int | None = None  # what the terminal sent the child: the end
        self._hung_up = False  # the terminal is gone: the end
        self.hooks = hooks
        self.launcher = launcher if launcher is not None else ExecLauncher()
        self._again: str | None = None  # the launcher asked to start the child again at once

    # -- requests (called from signal handlers or other threads) ---------------------------

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        self._stop_signals.append(signum)

    def request_restart(self) -> None:
        self._restart_requested = True

    @property
    def stopping(self) -> bool:
        return bool(self._stop_signals) or self._keyboard_signal is not None or self._hung_up

    # -- the loop ----------------------------------------------------------------------------

    def run(self, source: ChangeSource) -> int:
        """Start the child and restart it on every ChangeSet until asked to stop.

        Returns the exit status to end with (see the module docstring). Raises CommandError when
        the command cannot be started the first time and ReloaderFailed when the source fails;
        the child is stopped in every case.
        """
        with self._signal_handlers(), self._terminal_kept():
            try:
                self._start(None)
                while not self.stopping:
                    self._step(source)
            finally:
                self._log_stop()
                returncode = self.stop_child()
                self.launcher.close()
                self._handoff.close()
        return exit_status(returncode if returncode is not None else 0)

    def _log_stop(self) -> None:
        what = command_text(self.command)
        if self._keyboard_signal is not None:
            name = signal_name(self._keyboard_signal)
            logger.info("%s from the terminal; stopping %s", name, what)
        elif self._hung_up:
            logger.info("the terminal hung up; stopping %s", what)
        elif self._stop_signals:
            logger.info("%s received; stopping %s", signal_name(self._stop_signals[0]), what)

    def _step(self, source: ChangeSource) -> None:
        """One turn of the loop: a requested restart, or a look at the child, then the source."""
        if self._restart_requested:
            self._restart_requested = False
            if self.terminal is not None and self.terminal.hung_up():
                self._hung_up = True
            else:
                self.restart(ChangeSet(reason="SIGHUP received"))
            return
        self._notice_exit()
        if self.stopping:
            return
        if self._again is not None:
            reason, self._again = self._again, None
            self.restart(ChangeSet(reason=reason), clear=False)  # the crash stays on screen
            return
        if self.hooks is not None:
            self.hooks.poll()
        self.launcher.poll()
        if source.error is not None:
            raise ReloaderFailed(
                f"the file watcher stopped: {source.error}; restart watchreload "
                "(or use the stat backend)"
            ) from source.error
        if source.should_stop:
            raise ReloaderFailed(
                "the file watcher stopped unexpectedly; restart watchreload "
                "(with verbose logging to see why)"
            )
        batch = source.wait_for_changes(POLL_S)
        if batch is not None and not self.stopping:
            self.restart(batch)

    def restart(self, changes: ChangeSet, *, clear: bool = True) -> None:
        if self.hooks is not None and changes.changes:
            scoped = self.hooks.scoped(changes)
            if scoped is None:
                return
            changes = scoped
        if self.on_restart is not None and clear:
            self.on_restart()  # clearing the screen: first, so that the line saying why stays
        how = self.launcher.path(self.command, self.env)
        logger.info(
            "restarting: %s%s", _relative_to_cwd(changes).describe(), f" ({how})" if how else ""
        )
        if logger.isEnabledFor(logging.DEBUG):
            for path, kind in changes.changes.items():
                logger.debug("  %s %s", kind.name, path)
        self.stop_child()
        if self.stopping:
            return
        try:
            self._start(changes)
        except CommandError as exc:
            logger.error("%s; waiting for a change", exc)

    # -- the child ---------------------------------------------------------------------------

    def _start(self, changes: ChangeSet | None) -> None:
        env = {**self.env, **self._handoff.environment(changes)}
        if self.hooks is not None:
            env.update(self.hooks.environment(self.command, env, shell=self.shell))
        since = time.monotonic() if changes is None else changes.detected_at
        child = self.launcher.start(self.command, env, shell=self.shell)
        self.child = child
        if self.hooks is not None:
            self.hooks.started(child, since)
        self._reported_exit = False
        self._reported_tty_stop = False
        self.starts += 1
        if self.terminal is not None:
            self.terminal.hand_to(child.pid)  # after the guard: no Ctrl-C reaches it unseen

    def _notice_exit(self) -> None:
        """Report once that the child ended by itself."""
        if self.child is None or self._reported_exit:
            return
        returncode = self.child.poll()
        if returncode is None:
            if self.terminal is None:
                self._notice_terminal_stop(self.child)
            else:
                self.terminal.follow_stop(self.child)
                self._notice_terminal_signal(self.child, 0.0)
            return
        if self.terminal is not None:
            self._notice_terminal_signal(self.child, KEYBOARD_SETTLE_S)
            if self.stopping:
                return
            self.terminal.take_back()  # its modes, with the child's own keystrokes kept
        self._reported_exit = True
        self.last_returncode = returncode
        self._again = self.launcher.ended(self.child, returncode)
        level = logging.INFO if returncode == 0 else logging.WARNING
        then = "waiting for a change" if self._again is None else "running it again by exec"
        logger.log(level, "%s %s; %s", self.child.name, describe_status(returncode), then)

    def _notice_terminal_stop(self, child: Child) -> None:
        """Say why the child hangs when it used the terminal, which it was not lent."""
        if self._reported_tty_stop:
            return
        signum = child.stopped_by()
        if signum in (signal.SIGTTIN, signal.SIGTTOU):
            self._reported_tty_stop = True
            logger.warning(
                "%s is stopped by %s: it used the terminal, which watchreload lends to the "
                "command only when it runs in the foreground of the terminal with setting `tty` "
                "auto; run it so, or give the command input another way (a file, a remote "
                "debugger), and restart it",
                child.name,
                signal_name(signum),
            )

    def stop_child(self) -> int | None:
        """Stop the child's whole process group, boundedly; return the child's returncode.

        After a keyboard signal the child has it already: it may end by itself first, up to the
        stop timeout. With a terminal, the terminal is taken back (the keys typed for a child
        that watchreload stopped are dropped).
        """
        child = self.child
        if child is None:
            return self.last_returncode
        if self._keyboard_signal is not None:
            deadline = time.monotonic() + self.stop_timeout_s
            while child.poll() is None and time.monotonic() < deadline and not self._hurried():
                time.sleep(STOP_POLL_S)
        killed_by_us = child.poll() is None
        self.last_returncode = child.stop(self.stop_signal, self.stop_timeout_s, self._hurried)
        if not self._reported_exit and not self.stopping:
            self.launcher.ended(child, None if killed_by_us else self.last_returncode)
        self.child = None
        if self.terminal is not None:
            self.terminal.take_back(flush_input=killed_by_us)
        return self.last_returncode

    def _hurried(self) -> bool:
        return len(self._stop_signals) > 1  # asked twice: no more grace

    # -- the terminal ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _terminal_kept(self) -> Iterator[None]:
        """Save the terminal's modes at start (restored after every child); close it at the end."""
        if self.terminal is None:
            yield
            return
        self.terminal.save()
        try:
            yield
        finally:
            self.terminal.close()

    def _notice_terminal_signal(self, child: Child, settle_s: float) -> None:
        """End the run when the terminal sent the child's group a keyboard signal, or hung up.

        Another signal to the whole group (a `kill 0` of the child's) is no keyboard signal.
        """
        assert self.terminal is not None
        signum = child.group_signal(settle_s)
        if signum in KEYBOARD_SIGNALS:
            self._keyboard_signal = signum
        elif signum == signal.SIGHUP and self.terminal.hung_up():
            self._hung_up = True

    def _signal_handlers(self) -> contextlib.AbstractContextManager[None]:
        """SIGINT/SIGTERM request a stop, SIGHUP a restart (no logging: it may interrupt a log)."""
        handlers: dict[int, Callable[[int], None]] = {
            signal.SIGINT: self.request_stop,
            signal.SIGTERM: self.request_stop,
        }
        if hasattr(signal, "SIGHUP"):
            handlers[signal.SIGHUP] = lambda _signum: self.request_restart()
        return signals_handled(handlers)
