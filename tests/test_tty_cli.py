"""The real CLI in the foreground of a real pseudo-terminal: the terminal works for the child.

Each test types `.venv/bin/watchreload -w TREE -- python tests/programs/tty_child.py MODE` into an
interactive bash on a fresh pty (tests/ptys.py), then keys (a line, Ctrl-C, Ctrl-Z, `fg`) or
edits of TREE, and reads the screen with deadlines. The `backend` fixture runs the tests that
involve the watcher on both backends (the Watchman one exports the session daemon's WATCHMAN_SOCK
to the shell). Whatever is left in the shell's session is SIGKILLed by pid at teardown and
reported as a leak; the tests also check by pid and process group that nothing is left.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.programs.harness import alive, clean_environ
from tests.ptys import NEEDS_A_PTY, PROMPT, Shell, shell_session
from tests.support import PYTHON, Spawned, wait_for
from watchreload.cli import _TerminalHandler

pytestmark = NEEDS_A_PTY

PROGRAMS = Path(__file__).parent / "programs"
CHILD = f"{PYTHON} {PROGRAMS / 'tty_child.py'}"
WATCHRELOAD = Path(PYTHON).with_name("watchreload")  # the console script, as a user runs it


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    env = {"WATCHMAN_SOCK": os.environ["WATCHMAN_SOCK"]} if "WATCHMAN_SOCK" in os.environ else {}
    with shell_session(tmp_path, env) as shell:
        yield shell


class Child(NamedTuple):
    pid: int
    pgid: int
    watchreload: int  # its parent


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid`, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rfind(")") + 2 :].split()[1])


def watchreload(tree: Path, mode: str, *options: str, backend: str = "stat") -> str:
    base = [str(WATCHRELOAD), "-w", str(tree), "--backend", backend, "--poll-interval", "0.1"]
    return " ".join([*base, *options, "--", CHILD, mode])


def start(shell: Shell, tree: Path, mode: str, *options: str, backend: str = "stat") -> Child:
    """Run watchreload over tty_child.py in `mode`; return the child once it holds the terminal."""
    shell.run(watchreload(tree, mode, *options, backend=backend))
    return started(shell, mode)


def started(shell: Shell, mode: str) -> Child:
    match = shell.expect(rf"CHILD pid=(\d+) pgid=(\d+) mode={mode}")
    pid = int(match.group(1))
    child = Child(pid, int(match.group(2)), parent(pid))
    assert child.pgid == child.pid  # a group of its own
    wait_for(lambda: shell.foreground() == child.pgid, message="the child's group in front")
    return child


def nothing_left(*groups: int) -> bool:
    return not any(group_members(pgid) for pgid in groups)


def end_with_ctrl_c(shell: Shell, child: Child) -> int:
    """Ctrl-C to watchreload, which holds the terminal while it waits for a change."""
    wait_for(lambda: shell.foreground() == child.watchreload, message="watchreload in front")
    shell.send("\x03")
    shell.expect(re.escape(PROMPT))
    return shell.status()


def edit(tree: Path) -> None:
    with open(tree / "app.py", "a") as f:
        f.write("# edited\n")


def test_input_in_the_child_gets_its_line(shell: Shell, tree: Path, backend: str) -> None:
    child = start(shell, tree, "input", backend=backend)
    shell.expect(r"NAME\? ")
    shell.send("alice\r")
    shell.expect(r"GOT alice\n")
    shell.expect(r"exited with status 0; waiting for a change")
    assert end_with_ctrl_c(shell, child) == 0  # the child's last status
    assert nothing_left(child.pgid)


def test_a_pdb_session_in_the_child(shell: Shell, tree: Path, backend: str) -> None:
    child = start(shell, tree, "breakpoint", backend=backend)
    shell.expect(r"\(Pdb\) ")
    shell.send("p 6*7\r")
    shell.expect(r"\n42\n")
    shell.expect(r"\(Pdb\) ")
    shell.send("c\r")
    shell.expect(r"AFTER 6\n")
    shell.expect(r"exited with status 0; waiting for a change")
    assert end_with_ctrl_c(shell, child) == 0
    assert nothing_left(child.pgid)


def test_an_edit_while_the_child_waits_at_a_prompt(shell: Shell, tree: Path, backend: str) -> None:
    first = start(shell, tree, "input", backend=backend)
    shell.expect(r"NAME\? ")
    shell.send("typed for the first child")  # no Enter: dropped with it
    edit(tree)
    shell.expect(r"restarting: \S*app\.py modified")
    second = started(shell, "input")
    shell.expect(r"NAME\? ")
    assert nothing_left(first.pgid)
    shell.send("zed\r")
    shell.expect(r"GOT zed\n")
    shell.expect(r"exited with status 0; waiting for a change")
    assert end_with_ctrl_c(shell, second) == 0
    assert nothing_left(second.pgid)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("catch-int", 0),  # as Django's runserver: catches SIGINT, exits 0; watchreload ends too
        ("wait", 130),  # SIGINT killed the child: the shell's 130
    ],
)
def test_one_ctrl_c_ends_the_child_and_watchreload(
    shell: Shell, tree: Path, backend: str, mode: str, expected: int
) -> None:
    child = start(shell, tree, mode, backend=backend)
    shell.expect(r"READY")
    watchreload_pid = child.watchreload
    shell.send("\x03")
    shell.expect(r"SIGINT from the terminal; stopping")
    shell.expect(re.escape(PROMPT))
    assert shell.status() == expected
    assert "restarting" not in shell.screen
    assert not alive(watchreload_pid) and not alive(child.pid)
    assert nothing_left(child.pgid, watchreload_pid)
    assert shell.members() == []  # nothing left in the session either
    assert shell.modes() == "icanon echo"


def test_a_child_that_survives_the_ctrl_c_is_stopped_after_the_stop_timeout(
    shell: Shell, tree: Path, tmp_path: Path
) -> None:
    """After `c`, pdb catches Ctrl-C and breaks in again: the child survives the key, and yet
    watchreload ends, stopping it with the stop signal once the stop timeout has passed."""
    child = start(shell, tree, "breakpoint-wait", "--stop-timeout", "0.5")
    shell.expect(r"\(Pdb\) ")
    shell.send("c\r")
    shell.expect(r"AFTER 7\n")
    # Not while print() runs: pdb's handler would print inside it, and the child end with 1.
    wait_for((tmp_path / "waiting").exists, message="the child to wait")
    shell.send("\x03")
    shell.expect(r"SIGINT from the terminal; stopping")
    shell.expect(re.escape(PROMPT))
    assert shell.status() == 128 + signal.SIGTERM, shell.screen
    assert "restarting" not in shell.screen
    assert nothing_left(child.pgid, child.watchreload)


def test_ctrl_z_stops_both_and_fg_resumes_both(shell: Shell, tree: Path) -> None:
    child = start(shell, tree, "input")
    shell.expect(r"NAME\? ")
    watchreload_pid = child.watchreload
    shell.send("\x1a")
    shell.expect(r"Stopped")
    shell.expect(re.escape(PROMPT))
    shell.run("jobs -l")
    shell.expect(rf"{watchreload_pid} Stopped")
    assert shell.modes() == "icanon echo"  # the shell's own modes while the job is stopped
    shell.run("fg")
    wait_for(lambda: shell.foreground() == child.pgid, message="the child in front again")
    shell.send("carol\r")
    shell.expect(r"GOT carol\n")
    shell.expect(r"exited with status 0; waiting for a change")
    assert end_with_ctrl_c(shell, child) == 0
    assert nothing_left(child.pgid, watchreload_pid)


def test_the_terminal_modes_are_restored_after_a_child_that_turned_echo_off(
    shell: Shell, tree: Path
) -> None:
    assert shell.modes() == "icanon echo"
    child = start(shell, tree, "noecho")
    shell.expect(r"LEFT-NOECHO")
    shell.expect(r"exited with status 0; waiting for a change")
    assert end_with_ctrl_c(shell, child) == 0
    assert shell.modes() == "icanon echo"
    assert nothing_left(child.pgid)


@pytest.mark.parametrize("stderr", ["terminal", "file"])
def test_a_hang_up_leaves_no_process(shell: Shell, tree: Path, tmp_path: Path, stderr: str) -> None:
    """The child ignores SIGHUP; watchreload, told the hang-up from a `kill -HUP`, stops it and
    ends. With stderr on the terminal its last lines fail with EIO, which must not matter."""
    log = tmp_path / "stderr.log"
    redirect = f" 2>{log}" if stderr == "file" else ""
    shell.run(watchreload(tree, "ignore-hup") + redirect)
    child = started(shell, "ignore-hup")
    shell.expect(r"READY")
    watchreload_pid = child.watchreload
    shell.hang_up()
    wait_for(lambda: not alive(watchreload_pid), message="watchreload to end")
    wait_for(lambda: nothing_left(child.pgid, watchreload_pid), message="the child to end")
    wait_for(lambda: shell.members() == [], message="the session to be empty")
    if stderr == "file":
        output = log.read_text()
        assert "the terminal hung up; stopping" in output
        assert "restarting" not in output and "Traceback" not in output


def test_kill_hup_while_the_terminal_is_there_restarts(shell: Shell, tree: Path) -> None:
    first = start(shell, tree, "input")
    shell.expect(r"NAME\? ")
    os.kill(first.watchreload, signal.SIGHUP)
    shell.expect(r"restarting: SIGHUP received")
    second = started(shell, "input")
    shell.expect(r"NAME\? ")
    assert second.pid != first.pid and nothing_left(first.pgid)
    shell.send("yan\r")
    shell.expect(r"GOT yan\n")
    shell.expect(r"exited with status 0; waiting for a change")
    assert end_with_ctrl_c(shell, second) == 0


def test_sigkill_of_watchreload_takes_the_child_and_the_grandchild(
    shell: Shell, tree: Path
) -> None:
    child = start(shell, tree, "grandchild")
    grandchild = int(shell.expect(r"GRANDCHILD pid=(\d+)").group(1))
    shell.expect(r"READY")
    watchreload_pid = child.watchreload
    os.kill(watchreload_pid, signal.SIGKILL)
    wait_for(lambda: not alive(child.pid) and not alive(grandchild), message="the group to end")
    assert nothing_left(child.pgid)
    shell.expect(re.escape(PROMPT))  # the shell has its terminal back


def test_sigkill_of_watchreload_off_a_terminal_takes_the_child_and_the_grandchild(
    spawn: Callable[..., Spawned], tree: Path
) -> None:
    args = [str(WATCHRELOAD), "-w", str(tree), "--backend", "stat", "--"]
    process = spawn([*args, *CHILD.split(), "grandchild"], env=clean_environ())  # stdin: /dev/null
    wait_for(lambda: "READY" in process.output, message="the child to start")
    child = int(re.findall(r"CHILD pid=(\d+)", process.output)[0])
    grandchild = int(re.findall(r"GRANDCHILD pid=(\d+)", process.output)[0])
    os.kill(process.pid, signal.SIGKILL)
    wait_for(lambda: not alive(child) and not alive(grandchild), message="the group to end")
    assert nothing_left(child)


def test_with_tty_never_the_terminal_stays_with_watchreload(shell: Shell, tree: Path) -> None:
    shell.run(watchreload(tree, "input", "--tty", "never"))
    shell.expect(r"CHILD pid=(\d+) pgid=\d+ mode=input")
    shell.expect(r"is stopped by SIGTTIN: it used the terminal")
    shell.send("\x03")  # reaches watchreload, which stops the child with the stop signal
    shell.expect(r"SIGINT received; stopping")
    shell.expect(re.escape(PROMPT))
    assert shell.status() == 128 + signal.SIGTERM


# -- writing to a terminal that hung up -----------------------------------------------------------


class HungUp(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))


def test_a_log_line_the_hung_up_terminal_cannot_take_is_dropped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = _TerminalHandler(HungUp())
    handler.handle(logging.makeLogRecord({"msg": "restarting", "levelno": logging.INFO}))
    assert capsys.readouterr().err == ""  # not logging's "--- Logging error ---" and a traceback


def test_as_the_session_leader_a_hang_up_ends_watchreload_with_the_childs_status(
    tree: Path,
) -> None:
    """As the command of a terminal window or an SSH session: watchreload leads the session, so
    the hang-up's SIGHUP reaches it alone; it stops the child (SIGTERM: 143) and ends, its last
    log lines lost to EIO without a traceback (which would end it with 1)."""
    master, slave = os.openpty()
    args = [*watchreload(tree, "ignore-hup").split()]
    process = subprocess.Popen(
        ["setsid", "--ctty", *args], stdin=slave, stdout=slave, stderr=slave, env=clean_environ()
    )
    os.close(slave)
    screen = b""
    try:
        deadline = time.monotonic() + 20
        while b"READY\r\n" not in screen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                screen += os.read(master, 4096)
        assert b"READY\r\n" in screen, screen.decode(errors="replace")
        child = int(re.findall(rb"CHILD pid=(\d+)", screen)[0])
        os.close(master)  # the hang-up
        master = -1
        assert process.wait(20) == 128 + signal.SIGTERM
        wait_for(lambda: nothing_left(child), message="the child's group to end")
    finally:
        if master >= 0:
            os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait(20)
