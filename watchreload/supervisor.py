"""Command mode: the child's lifetime, and nothing else.

The supervisor starts the command in a process group of its own and restarts it once per ChangeSet
it reads from a change source (a reloader, or in tests anything with `wait_for_changes()`):

- **restart**: send the stop signal to the child's whole process group, wait up to the stop
  timeout for the group to empty, SIGKILL the group, wait for it, then start the new child. There
  are never two children at once, and no grandchild in the group survives.
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
SIGINT; pass `--stop-signal INT` for KeyboardInterrupt), and the child cannot read the terminal:
one that tries (input(), pdb) is stopped by SIGTTIN, and watchreload says so once.

The restarted child finds the changed paths in `WATCHRELOAD_CHANGES`, a JSON list of absolute
paths (`[]` after SIGHUP; unset for the first start). The list is bounded to
CHANGES_ENV_LIMIT_BYTES so that a branch switch touching thousands of files cannot make exec fail:
past the limit the variable holds only the first paths that fit, and `WATCHRELOAD_CHANGES_FILE`
names a JSON file with the full list (it is deleted at the next restart and when watchreload
exits). `WATCHRELOAD_CHANGES_FILE` is set only when the inline list was truncated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Protocol

from watchreload.changes import ChangeSet
from watchreload.errors import CommandError, CommandNotExecutable, CommandNotFound, ReloaderFailed

logger = logging.getLogger(__name__)

CHANGES_ENV = "WATCHRELOAD_CHANGES"
CHANGES_FILE_ENV = "WATCHRELOAD_CHANGES_FILE"
# One environment string may not exceed 128 KiB on Linux (MAX_ARG_STRLEN), and the whole
# environment shares the argument space with argv; 64 KiB leaves room for both.
CHANGES_ENV_LIMIT_BYTES = 64 * 1024

POLL_S = 0.1  # how often the main loop looks at signals and the child while waiting for changes
KILL_WAIT_S = 5.0  # how long to wait for a SIGKILLed group before giving up on it


class ChangeSource(Protocol):
    """What the supervisor reads changes from: a BaseReloader, or a fake in tests."""

    @property
    def error(self) -> BaseException | None: ...

    @property
    def should_stop(self) -> bool: ...

    def wait_for_changes(self, timeout_s: float | None = None) -> ChangeSet | None: ...


def exit_status(returncode: int) -> int:
    """A Popen returncode as a shell reports it: the code, or 128 + N for signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_status(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {_signal_name(-returncode)}"
    return f"exited with status {returncode}"


def _relative_to_cwd(changes: ChangeSet) -> ChangeSet:
    """The same ChangeSet with paths under the current directory made relative, for display."""
    cwd = os.getcwd()

    def show(path: Path) -> Path:
        relative = os.path.relpath(path, cwd)
        return path if relative.startswith("..") else Path(relative)

    return ChangeSet({show(p): kind for p, kind in changes.changes.items()}, changes.reason)


def check_command(command: Sequence[str], shell: bool = False) -> None:
    """Raise CommandNotFound / CommandNotExecutable before anything else starts."""
    if not command:
        raise CommandError(
            "no command given; put it after '--', as in 'watchreload -- python app.py'"
        )
    if shell:
        if shutil.which("sh") is None:
            raise CommandNotFound("--shell needs /bin/sh, which was not found; run without --shell")
        return
    program = command[0]
    if os.sep in program:
        if not os.path.exists(program):
            raise CommandNotFound(f"command {program!r} does not exist; check the path")
        if os.path.isdir(program) or not os.access(program, os.X_OK):
            raise CommandNotExecutable(
                f"command {program!r} is not executable; chmod +x it or run it through its "
                "interpreter"
            )
    elif shutil.which(program) is None:
        raise CommandNotFound(
            f"command {program!r} not found on PATH; check the spelling or pass its full path"
        )


def changes_environment(
    changes: ChangeSet | None, limit_bytes: int = CHANGES_ENV_LIMIT_BYTES
) -> tuple[dict[str, str], Path | None]:
    """The variables that tell a restarted child what changed, and the overflow file if any."""
    if changes is None:
        return {}, None
    paths = [os.fspath(p) for p in changes.paths]
    inline = json.dumps(paths)
    if len(inline.encode()) <= limit_bytes:
        return {CHANGES_ENV: inline}, None
    fd, name = tempfile.mkstemp(prefix="watchreload-changes-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(paths, f)
    # Keep the longest prefix of paths that fits: bisect on the encoded size.
    low, high = 0, len(paths)
    while low < high:
        mid = (low + high + 1) // 2
        if len(json.dumps(paths[:mid]).encode()) <= limit_bytes:
            low = mid
        else:
            high = mid - 1
    logger.debug(
        "%d changed paths do not fit in %s; passing %d inline and all in %s",
        len(paths),
        CHANGES_ENV,
        low,
        name,
    )
    return {CHANGES_ENV: json.dumps(paths[:low]), CHANGES_FILE_ENV: name}, Path(name)


def _process_group_alive(pgid: int) -> bool:
    """True while any non-zombie process is in the group (zombies can't be killed, only reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


class Supervisor:
    """Runs `command`, restarting it once per ChangeSet read from a source."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        shell: bool = False,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_timeout_s: float = 5.0,
        on_restart: Callable[[], None] | None = None,
        env: Mapping[str, str] | None = None,
        changes_limit_bytes: int = CHANGES_ENV_LIMIT_BYTES,
    ) -> None:
        self.command = list(command)
        self.shell = shell
        self.stop_signal = stop_signal
        self.stop_timeout_s = stop_timeout_s
        self.on_restart = on_restart
        self.env = dict(os.environ if env is None else env)
        for name in (CHANGES_ENV, CHANGES_FILE_ENV):
            self.env.pop(name, None)  # a stale list from an outer watchreload means nothing here
        self.changes_limit_bytes = changes_limit_bytes
        self.child: subprocess.Popen[bytes] | None = None
        self.last_returncode: int | None = None
        self.starts = 0
        self._pgid: int | None = None
        self._reported_exit = False
        self._reported_tty_stop = False
        self._changes_file: Path | None = None
        self._stop_signals: list[int] = []  # appended to by signal handlers
        self._restart_requested = False
        self._wake = threading.Event()

    # -- requests (called from signal handlers or other threads) ---------------------------

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        self._stop_signals.append(signum)
        self._wake.set()

    def request_restart(self) -> None:
        self._restart_requested = True
        self._wake.set()

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
                    if self._restart_requested:
                        self._restart_requested = False
                        self.restart(ChangeSet(reason="SIGHUP received"))
                        continue
                    self._notice_exit()
                    if source.error is not None:
                        raise ReloaderFailed(
                            f"the file watcher stopped: {source.error}; restart watchreload "
                            "(or pass --backend=stat)"
                        ) from source.error
                    if source.should_stop:
                        raise ReloaderFailed(
                            "the file watcher stopped unexpectedly; restart watchreload "
                            "(with -v to see why)"
                        )
                    batch = source.wait_for_changes(POLL_S)
                    if batch is not None and not self.stopping:
                        self.restart(batch)
            finally:
                if self._stop_signals:
                    name = _signal_name(self._stop_signals[0])
                    logger.info("%s received; stopping %s", name, self._command_text())
                returncode = self.stop_child()
                self._drop_changes_file()
        return exit_status(returncode if returncode is not None else 0)

    def restart(self, changes: ChangeSet) -> None:
        if self.on_restart is not None:
            self.on_restart()  # --clear: first, so that the line saying why stays on screen
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
        self._drop_changes_file()
        extra, self._changes_file = changes_environment(changes, self.changes_limit_bytes)
        env = {**self.env, **extra}
        args: str | list[str] = " ".join(self.command) if self.shell else self.command
        try:
            self.child = subprocess.Popen(args, shell=self.shell, env=env, process_group=0)
        except FileNotFoundError as exc:
            raise CommandNotFound(
                f"command {self.command[0]!r} not found; check the spelling or pass its full path"
            ) from exc
        except PermissionError as exc:
            raise CommandNotExecutable(
                f"command {self.command[0]!r} cannot be run ({exc.strerror}); check its permissions"
            ) from exc
        except OSError as exc:  # e.g. ENOEXEC: a script without a #! line
            raise CommandNotExecutable(
                f"command {self.command[0]!r} cannot be started ({exc.strerror or exc}); "
                "run it through its interpreter"
            ) from exc
        self._pgid = self.child.pid
        self._reported_exit = False
        self._reported_tty_stop = False
        self.starts += 1
        logger.debug("started %s as pid %d", self.command, self.child.pid)

    def _notice_exit(self) -> None:
        """Report once that the child ended by itself."""
        if self.child is None or self._reported_exit:
            return
        returncode = self.child.poll()
        if returncode is None:
            self._notice_terminal_stop(self.child.pid)
            return
        self._reported_exit = True
        self.last_returncode = returncode
        level = logging.INFO if returncode == 0 else logging.WARNING
        logger.log(
            level, "%s %s; waiting for a change", self._command_text(), describe_status(returncode)
        )

    def _notice_terminal_stop(self, pid: int) -> None:
        """Say why the child hangs when it tried to use the terminal from its background group."""
        if self._reported_tty_stop or not hasattr(os, "waitid"):
            return
        try:  # WNOWAIT: only look, so that Popen still collects the exit status later
            info = os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_code != os.CLD_STOPPED:
            return
        if info.si_status in (signal.SIGTTIN, signal.SIGTTOU):
            self._reported_tty_stop = True
            logger.warning(
                "%s is stopped by %s: it used the terminal, which stays with watchreload (the "
                "command runs in a process group of its own); give it input another way (a "
                "file, a remote debugger) and restart it",
                self._command_text(),
                _signal_name(info.si_status),
            )

    def stop_child(self) -> int | None:
        """Stop the child's whole process group, boundedly; return the child's returncode."""
        child, pgid = self.child, self._pgid
        if child is None or pgid is None:
            return self.last_returncode
        if child.poll() is None or _process_group_alive(pgid):
            self._signal_group(pgid, self.stop_signal)
            self._signal_group(pgid, signal.SIGCONT)  # a stopped process acts on it only now
            deadline = time.monotonic() + self.stop_timeout_s
            hurried = False
            while self._group_running(child, pgid) and time.monotonic() < deadline:
                hurried = len(self._stop_signals) > 1  # asked twice: no more grace
                if hurried:
                    break
                self._wake.wait(0.02)
                self._wake.clear()
            if self._group_running(child, pgid):
                if hurried:
                    logger.info("asked to stop again; sending SIGKILL to %s", self._command_text())
                else:
                    logger.info(
                        "%s did not stop within %gs of %s; sending SIGKILL",
                        self._command_text(),
                        self.stop_timeout_s,
                        self.stop_signal.name,
                    )
                self._signal_group(pgid, signal.SIGKILL)
                deadline = time.monotonic() + KILL_WAIT_S
                while self._group_running(child, pgid) and time.monotonic() < deadline:
                    time.sleep(0.01)
        try:
            child.wait(KILL_WAIT_S)
        except subprocess.TimeoutExpired:
            logger.warning("pid %d survived SIGKILL; giving up on it", child.pid)
        self.last_returncode = child.returncode
        self.child = None
        self._pgid = None
        return self.last_returncode

    @staticmethod
    def _group_running(child: subprocess.Popen[bytes], pgid: int) -> bool:
        return child.poll() is None or _process_group_alive(pgid)

    @staticmethod
    def _signal_group(pgid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signum)

    def _command_text(self) -> str:
        text = " ".join(self.command)
        return repr(text if len(text) <= 60 else text[:57] + "...")

    def _drop_changes_file(self) -> None:
        if self._changes_file is not None:
            self._changes_file.unlink(missing_ok=True)
            self._changes_file = None

    # -- signals -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        """SIGINT/SIGTERM stop, SIGHUP restarts; only the main thread can install handlers."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_stop(signum: int, frame: FrameType | None) -> None:
            self.request_stop(signum)  # no logging here: a handler may interrupt a log call

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.request_restart()

        wanted = {signal.SIGINT: on_stop, signal.SIGTERM: on_stop}
        if hasattr(signal, "SIGHUP"):
            wanted[signal.SIGHUP] = on_hup
        previous = {signum: signal.signal(signum, handler) for signum, handler in wanted.items()}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
