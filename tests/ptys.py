"""A job-control shell on a real pseudo-terminal, for the tests of the terminal.

`Shell` starts `bash --norc --noprofile -i` as the session leader of a fresh pty (util-linux
`setsid --ctty`), types into the master and reads the screen with deadlines. Whatever is left in
the shell's session is SIGKILLed by pid at `close()` and returned, for the test to report as a
leak. Used by tests/test_terminal.py (the mechanics, through tests/programs/tty_driver.py) and
tests/test_tty_cli.py (the real CLI).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.support import session_members

DEADLINE_S = 20.0
PROMPT = "PROMPT> "


def can_open_ptmx() -> bool:
    try:
        master, slave = os.openpty()
    except OSError:
        return False
    os.close(master)
    os.close(slave)
    return True


# For a test module: `pytestmark = NEEDS_A_PTY`.
NEEDS_A_PTY = [
    pytest.mark.skipif(not can_open_ptmx(), reason="/dev/ptmx cannot be opened here"),
    pytest.mark.skipif(shutil.which("setsid") is None, reason="util-linux setsid is missing"),
]


class Shell:
    """An interactive bash on a pty of its own: `send` keys, `expect` what appears."""

    def __init__(self, tmp_path: Path, env: Mapping[str, str] | None = None) -> None:
        inputrc = tmp_path / "inputrc"
        inputrc.write_text("set enable-bracketed-paste off\n")
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "TERM": "dumb",
            "PS1": PROMPT,
            "INPUTRC": str(inputrc),
            "HISTFILE": "/dev/null",
            "PYTHONPATH": str(Path(__file__).parent.parent),
            "WATCHRELOAD_TEST_LOG": str(tmp_path / "driver.log"),
            **(env or {}),
        }
        self.log = Path(environment["WATCHRELOAD_TEST_LOG"])
        self.master, slave = os.openpty()
        # Wide enough that readline never scrolls a long command line sideways.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 1000, 0, 0))
        self.process = subprocess.Popen(
            ["setsid", "--ctty", "bash", "--norc", "--noprofile", "-i"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environment,
            cwd=tmp_path,
        )
        os.close(slave)
        self.session = self.process.pid  # setsid execs bash: same pid, the session's leader
        self.screen = ""
        self._mark = 0
        self._closed = False
        self.expect(re.escape(PROMPT))

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def run(self, command: str) -> None:
        self.send(command + "\r")

    def _read(self, timeout_s: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if not ready:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every slave end is closed
            data = b""
        if not data:
            self._closed = True
            return
        self.screen += data.decode(errors="replace").replace("\r", "")

    def read_screen(self, timeout_s: float = 0.1) -> str:
        """The screen, after reading what arrives within `timeout_s` (for a wait_for)."""
        self._read(timeout_s)
        return self.screen

    def expect(self, pattern: str, timeout_s: float = DEADLINE_S) -> re.Match[str]:
        """Wait for `pattern` after the previous match; fail with the screen at the deadline."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            match = regex.search(self.screen, self._mark)
            if match:
                self._mark = match.end()
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                raise AssertionError(
                    f"no {pattern!r} within {timeout_s}s; the screen:\n{self.screen[-3000:]}"
                )
            self._read(min(remaining, 0.2))

    def foreground(self) -> int | None:
        """The terminal's foreground process group (read through the master), None once gone."""
        try:
            return os.tcgetpgrp(self.master)
        except OSError:
            return None

    def status(self) -> int:
        """The exit status of the last command, as the shell reports it."""
        self.run('echo "STATUS=$?"')
        return int(self.expect(r"STATUS=(\d+)").group(1))

    def modes(self) -> str:
        """`icanon echo` (or with `-`) as `stty -a` shows them now."""
        words = "tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' '"
        self.run(f'echo "MODES $(stty -a | {words})"')
        return self.expect(r"MODES (-?icanon -?echo)").group(1)

    def members(self) -> list[int]:
        """The live processes of the shell's session, the shell excepted."""
        return [pid for pid in session_members(self.session) if pid != self.session]

    def hang_up(self) -> None:
        os.close(self.master)
        self._closed = True

    def close(self) -> list[int]:
        """Kill what is left of the session (by pid); return the pids that were still alive."""
        leftovers = self.members()
        for pid in [*leftovers, self.session]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(DEADLINE_S)
        if not self._closed:
            os.close(self.master)
        return leftovers


@contextlib.contextmanager
def shell_session(tmp_path: Path, env: Mapping[str, str] | None = None) -> Iterator[Shell]:
    """A Shell for a fixture: at the end, fail when anything was left in its session."""
    shell = Shell(tmp_path, env)
    try:
        yield shell
    finally:
        leftovers = shell.close()
    if leftovers:
        pytest.fail(f"processes left in the shell's session: {leftovers}\n{shell.screen}")
