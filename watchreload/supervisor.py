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

Because the child has a process group of its own, Ctrl-C in a terminal reaches watchreload only
(which then stops the child as above: the child sees the stop signal, SIGTERM by default, not
SIGINT; set the stop signal to SIGINT for KeyboardInterrupt), and the child cannot read the
terminal: one that tries (input(), pdb) is stopped by SIGTTIN, and watchreload says so once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from watchreload.changes import ChangeSet
from watchreload.command import CHANGES_ENV_LIMIT_BYTES, ChangesHandoff, without_changes
from watchreload.errors import CommandError, ReloaderFailed
from watchreload.process import (
    STOP_TIMEOUT_S,
    ChildProcess,
    command_text,
    describe_status,
    exit_status,
    signal_name,
    signals_handled,
)

logger = logging.getLogger(__name__)

POLL_S = 0.1  # how often the main loop looks at signals and the child while waiting for changes


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

    def started(self, child: ChildProcess, since: float | None) -> None: ...

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
        hooks: StartHooks | None = None,
    ) -> None:
        self.command = list(command)
        self.shell = shell
        self.stop_signal = stop_signal
        self.stop_timeout_s = stop_timeout_s
        self.on_restart = on_restart
        self.env = without_changes(os.environ if env is None else env)
        self.child: ChildProcess | None = None
        self.last_returncode: int | None = None
        self.starts = 0
        self._handoff = ChangesHandoff(changes_limit_bytes)
        self._reported_exit = False
        self._reported_tty_stop = False
        self._stop_signals: list[int] = []  # appended to by signal handlers
        self._restart_requested = False
        self.hooks = hooks

    # -- requests (called from signal handlers or other threads) ---------------------------

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        self._stop_signals.append(signum)

    def request_restart(self) -> None:
        self._restart_requested = True

    @property
    def stopping(self) -> bool:
        return bool(self._stop_signals)

    # -- the loop ----------------------------------------------------------------------------

    def run(self, source: ChangeSource) -> int:
        """Start the child and restart it on every ChangeSet until asked to stop.

        Returns the exit status to end with (see the module docstring). Raises CommandError when
        the command cannot be started the first time and ReloaderFailed when the source fails;
        the child is stopped in every case.
        """
        with self._signal_handlers():
            try:
                self._start(None)
                while not self.stopping:
                    self._step(source)
            finally:
                if self._stop_signals:
                    name = signal_name(self._stop_signals[0])
                    logger.info("%s received; stopping %s", name, command_text(self.command))
                returncode = self.stop_child()
                self._handoff.close()
        return exit_status(returncode if returncode is not None else 0)

    def _step(self, source: ChangeSource) -> None:
        """One turn of the loop: a requested restart, or a look at the child, then the source."""
        if self._restart_requested:
            self._restart_requested = False
            self.restart(ChangeSet(reason="SIGHUP received"))
            return
        self._notice_exit()
        if self.hooks is not None:
            self.hooks.poll()
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

    def restart(self, changes: ChangeSet) -> None:
        if self.hooks is not None and changes.changes:
            scoped = self.hooks.scoped(changes)
            if scoped is None:
                return
            changes = scoped
        if self.on_restart is not None:
            self.on_restart()  # clearing the screen: first, so that the line saying why stays
        logger.info("restarting: %s", _relative_to_cwd(changes).describe())
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
        child = ChildProcess(self.command, env=env, own_group=True, shell=self.shell)
        child.start()
        self.child = child
        if self.hooks is not None:
            self.hooks.started(child, since)
        self._reported_exit = False
        self._reported_tty_stop = False
        self.starts += 1

    def _notice_exit(self) -> None:
        """Report once that the child ended by itself."""
        if self.child is None or self._reported_exit:
            return
        returncode = self.child.poll()
        if returncode is None:
            self._notice_terminal_stop(self.child)
            return
        self._reported_exit = True
        self.last_returncode = returncode
        level = logging.INFO if returncode == 0 else logging.WARNING
        logger.log(
            level, "%s %s; waiting for a change", self.child.name, describe_status(returncode)
        )

    def _notice_terminal_stop(self, child: ChildProcess) -> None:
        """Say why the child hangs when it tried to use the terminal from its background group."""
        if self._reported_tty_stop:
            return
        signum = child.stopped_by()
        if signum in (signal.SIGTTIN, signal.SIGTTOU):
            self._reported_tty_stop = True
            logger.warning(
                "%s is stopped by %s: it used the terminal, which stays with watchreload (the "
                "command runs in a process group of its own); give it input another way (a "
                "file, a remote debugger) and restart it",
                child.name,
                signal_name(signum),
            )

    def stop_child(self) -> int | None:
        """Stop the child's whole process group, boundedly; return the child's returncode."""
        if self.child is None:
            return self.last_returncode
        self.last_returncode = self.child.stop(
            self.stop_signal,
            self.stop_timeout_s,
            hurry=lambda: len(self._stop_signals) > 1,  # asked twice: no more grace
        )
        self.child = None
        return self.last_returncode

    def _signal_handlers(self) -> contextlib.AbstractContextManager[None]:
        """SIGINT/SIGTERM request a stop, SIGHUP a restart (no logging: it may interrupt a log)."""
        handlers: dict[int, Callable[[int], None]] = {
            signal.SIGINT: self.request_stop,
            signal.SIGTERM: self.request_stop,
        }
        if hasattr(signal, "SIGHUP"):
            handlers[signal.SIGHUP] = lambda _signum: self.request_restart()
        return signals_handled(handlers)
