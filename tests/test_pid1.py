"""watchreload as PID 1 of a PID namespace (`unshare --fork --pid --mount-proc`), as in a
container started without `--init`: orphans are reaped, SIGTERM stops the child and watchreload
ends with its status, and the terminal still works for the child."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shlex
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.programs.harness import clean_environ
from tests.ptys import can_open_ptmx
from tests.support import PYTHON, Spawned, wait_for
from tests.test_tty_cli import CHILD, WATCHRELOAD
from watchreload.pid1 import exit_status

Spawn = Callable[..., Spawned]
UNSHARE = ["unshare", "--fork", "--pid", "--mount-proc"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace needs root here"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is missing"),
]

# Five grandchildren, each orphaned when its parent exits at once; each waits until the kernel
# has re-parented it to PID 1, says so in a file, and exits: a zombie unless PID 1 reaps it.
ORPHANS = """
import os, sys, time
from pathlib import Path
out = Path(sys.argv[1])
for i in range(5):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            while os.getppid() != 1:
                time.sleep(0.01)
            (out / f"orphan-{i}").write_text("")
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
time.sleep(3600)
"""


def stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rfind(")") + 2 :].split()


def children_of(pid: int) -> list[int]:
    """Processes whose parent is `pid`, zombies included (read from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(stat_fields(int(entry))[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError):
                continue
    return found


def test_orphans_are_reaped_and_sigterm_stops_the_child_with_its_status(
    spawn: Spawn, tmp_path: Path
) -> None:
    tree, out = tmp_path / "tree", tmp_path / "out"
    tree.mkdir()
    out.mkdir()
    (tree / "orphans.py").write_text(ORPHANS)
    command = [PYTHON, "-m", "watchreload", "--backend", "stat", "--no-agent"]
    run = spawn(
        [*UNSHARE, *command, "--", PYTHON, "orphans.py", str(out)], cwd=tree, env=clean_environ()
    )
    init = wait_for(lambda: children_of(run.pid), message="PID 1 of the namespace")[0]
    wait_for(lambda: len(list(out.iterdir())) == 5, message=f"five orphans\n{run.output}")
    # PID 1's only child left is the real watchreload: every orphan was reaped, none is a zombie.
    wait_for(lambda: len(children_of(init)) == 1, message="the orphans to be reaped")
    (watchreload,) = children_of(init)
    assert stat_fields(watchreload)[0] != "Z"

    os.kill(init, signal.SIGTERM)  # what `docker stop` does
    assert run.wait() == 128 + signal.SIGTERM, run.output
    assert "SIGTERM received; stopping" in run.output


def test_the_exit_status_is_the_childs_or_128_plus_its_signal() -> None:
    assert exit_status(3 << 8) == 3
    assert exit_status(signal.SIGTERM) == 143


class Console:
    """A command on a pty of its own, as `docker run -t` starts the container's first process:
    `unshare` makes the PID namespace, util-linux `setsid --ctty` a session inside it whose
    controlling terminal is the pty, then watchreload runs as its PID 1."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.master = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child execs at once
            os.execvp(UNSHARE[0], [*UNSHARE, "setsid", "--ctty", *argv])
        self.screen = ""

    def expect(self, pattern: str, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not re.search(pattern, self.screen):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {pattern!r} within {timeout_s}s:\n{self.screen}"
            readable, _, _ = select.select([self.master], [], [], remaining)
            if readable:
                try:
                    self.screen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # EIO: everything on the pty has gone
                    assert re.search(pattern, self.screen), self.screen
                    return

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self, timeout_s: float = 20.0) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return exit_status(status)
            time.sleep(0.02)
        raise AssertionError(f"still running after {timeout_s}s:\n{self.screen}")

    def close(self) -> None:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            if os.waitpid(self.pid, os.WNOHANG)[0] == 0:
                os.kill(self.pid, signal.SIGKILL)  # unshare: the namespace goes with it
                os.waitpid(self.pid, 0)
        os.close(self.master)


@pytest.fixture
def console() -> Iterator[Callable[[list[str]], Console]]:
    started: list[Console] = []

    def start(argv: list[str]) -> Console:
        started.append(Console(argv))
        return started[-1]

    yield start
    for each in started:
        each.close()


@pytest.mark.skipif(not can_open_ptmx(), reason="/dev/ptmx cannot be opened here")
def test_on_a_terminal_the_child_gets_its_line_and_ctrl_c_ends_both(
    console: Callable[[list[str]], Console], tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    options = ["-w", str(tree), "--backend", "stat", "--no-agent"]
    run = console([str(WATCHRELOAD), *options, "--", *shlex.split(CHILD), "input"])
    run.expect(r"CHILD pid=\d+ pgid=\d+ mode=input")
    run.expect(r"NAME\? ")
    run.send("alice\r")
    run.expect(r"GOT alice")
    run.expect(r"exited with status 0; waiting for a change")
    run.send("\x03")  # to the terminal's foreground group: PID 1 and watchreload both get it
    assert run.wait() == 0, run.screen
