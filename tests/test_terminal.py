"""watchreload.terminal on a real pseudo-terminal, under a real job-control shell.

Each test starts `bash --norc --noprofile -i` as the session leader of a fresh pty (util-linux
`setsid --ctty`), types into the master and reads the screen with deadlines. The shell runs
tests/programs/tty_driver.py, which plays the Supervisor's part over tests/programs/tty_child.py.
Whatever is left in the shell's session is SIGKILLed by pid at teardown and reported as a leak.
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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.programs.harness import alive
from tests.support import PYTHON, Spawned, session_members, wait_for
from watchreload.terminal import ForegroundTerminal, GroupWitness, pdeathsig_argv

PROGRAMS = Path(__file__).parent / "programs"
DRIVER = f"{PYTHON} {PROGRAMS / 'tty_driver.py'}"
CHILD = f"{PYTHON} {PROGRAMS / 'tty_child.py'}"
DEADLINE_S = 20.0
PROMPT = "PROMPT> "


def _can_open_ptmx() -> bool:
    try:
        master, slave = os.openpty()
    except OSError:
        return False
    os.close(master)
    os.close(slave)
    return True


pytestmark = [
    pytest.mark.skipif(not _can_open_ptmx(), reason="/dev/ptmx cannot be opened here"),
    pytest.mark.skipif(shutil.which("setsid") is None, reason="util-linux setsid is missing"),
]


class Shell:
    """An interactive bash on a pty of its own: `send` keys, `expect` what appears."""

    def __init__(self, tmp_path: Path) -> None:
        inputrc = tmp_path / "inputrc"
        inputrc.write_text("set enable-bracketed-paste off\n")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "TERM": "dumb",
            "PS1": PROMPT,
            "INPUTRC": str(inputrc),
            "HISTFILE": "/dev/null",
            "PYTHONPATH": str(Path(__file__).parent.parent),
            "WATCHRELOAD_TEST_LOG": str(tmp_path / "driver.log"),
        }
        self.log = Path(env["WATCHRELOAD_TEST_LOG"])
        self.master, slave = os.openpty()
        # Wide enough that readline never scrolls a long command line sideways.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 1000, 0, 0))
        self.process = subprocess.Popen(
            ["setsid", "--ctty", "bash", "--norc", "--noprofile", "-i"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
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

    def status(self) -> int:
        """The exit status of the last command, as the shell reports it."""
        self.run('echo "STATUS=$?"')
        return int(self.expect(r"STATUS=(\d+)").group(1))

    def modes(self) -> str:
        """`icanon echo` (or with `-`) as `stty -a` shows them now."""
        words = "tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' '"
        self.run(f'echo "MODES $(stty -a | {words})"')
        return self.expect(r"MODES (-?icanon -?echo)").group(1)

    def hang_up(self) -> None:
        os.close(self.master)
        self._closed = True

    def close(self) -> list[int]:
        """Kill what is left of the session (by pid); return the pids that were still alive."""
        leftovers = [pid for pid in session_members(self.session) if pid != self.session]
        for pid in [*leftovers, self.session]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(DEADLINE_S)
        if not self._closed:
            os.close(self.master)
        return leftovers


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    shell = Shell(tmp_path)
    try:
        yield shell
    finally:
        leftovers = shell.close()
    if leftovers:
        pytest.fail(f"processes left in the shell's session: {leftovers}\n{shell.screen}")


def start(shell: Shell, mode: str, *driver_options: str) -> tuple[int, int]:
    """Run the driver over tty_child.py in `mode`; return (driver pid, child pid)."""
    shell.run(" ".join([DRIVER, *driver_options, "--", CHILD, mode]))
    driver = int(shell.expect(r"DRIVER pid=(\d+) terminal=yes").group(1))
    child = int(shell.expect(r"DRIVER child=(\d+)").group(1))
    shell.expect(rf"CHILD pid={child} pgid={child} mode={mode}")
    return driver, child


def state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2]


def gone(*pids: int) -> bool:
    return not any(alive(pid) for pid in pids)


WAITS = pytest.mark.parametrize(
    "waits", [[], ["--no-waitid"]], ids=["waitid", "waitpid-as-on-macos"]
)


@WAITS
def test_input_in_the_child_gets_its_line(shell: Shell, waits: list[str]) -> None:
    start(shell, "input", *waits)
    shell.expect(r"NAME\? ")
    shell.send("alice\r")
    shell.expect(r"GOT alice")
    shell.expect(r"DRIVER exit rc=0 key=None")
    assert shell.status() == 0


@WAITS
def test_a_read_before_the_hand_over_stops_the_child_once_then_works(
    shell: Shell, waits: list[str]
) -> None:
    start(shell, "input", "--lazy", *waits)
    shell.expect(r"NAME\? ")
    shell.expect(r"DRIVER child stopped by SIGTTIN; resumed")
    shell.send("bob\r")
    shell.expect(r"GOT bob")
    shell.expect(r"DRIVER exit rc=0 key=None")
    assert shell.status() == 0


def test_breakpoint_in_the_child(shell: Shell) -> None:
    start(shell, "breakpoint")
    shell.expect(r"\(Pdb\) ")
    shell.send("p 6*7\r")
    shell.expect(r"\n42\n")
    shell.expect(r"\(Pdb\) ")
    shell.send("c\r")
    shell.expect(r"AFTER 6")
    shell.expect(r"DRIVER exit rc=0 key=None")
    assert shell.status() == 0


@pytest.mark.parametrize("mode", ["raw", "noecho"])
def test_the_saved_modes_are_restored_after_the_child(shell: Shell, mode: str) -> None:
    assert shell.modes() == "icanon echo"
    start(shell, mode)
    shell.expect(r"DRIVER exit rc=0")
    assert shell.modes() == "icanon echo"


@pytest.mark.parametrize(
    ("mode", "key", "name", "expected"),
    [
        ("catch-int", "\x03", "SIGINT", 0),  # as Django's runserver: catches it, exits 0
        ("wait", "\x03", "SIGINT", 130),
        ("catch-int", "\x1c", "SIGQUIT", 131),  # Ctrl-\\
    ],
)
def test_one_keyboard_signal_ends_the_child_and_the_driver(
    shell: Shell, mode: str, key: str, name: str, expected: int
) -> None:
    shell.run("ulimit -c 0")  # no core file for SIGQUIT
    _, child = start(shell, mode)
    shell.expect(r"READY")
    shell.send(key)
    shell.expect(rf"DRIVER exit rc=-?\d+ key={name}\n")
    assert shell.status() == expected
    assert gone(child)
    assert shell.modes() == "icanon echo"


@WAITS
def test_ctrl_z_stops_both_and_fg_resumes_both(shell: Shell, waits: list[str]) -> None:
    driver, child = start(shell, "input", *waits)
    shell.expect(r"NAME\? ")
    shell.send("\x1a")
    shell.expect(r"Stopped")
    shell.expect(re.escape(PROMPT))
    shell.run("jobs -l")
    shell.expect(rf"{driver} Stopped")
    assert shell.modes() == "icanon echo"
    shell.run("fg")
    shell.expect(r"DRIVER child stopped by SIGTSTP; resumed")
    shell.send("carol\r")
    shell.expect(r"GOT carol")
    shell.expect(r"DRIVER exit rc=0")
    assert shell.status() == 0
    assert gone(driver, child)


def test_after_ctrl_z_and_bg_a_read_stops_the_job_until_fg(shell: Shell) -> None:
    driver, child = start(shell, "input")
    shell.expect(r"NAME\? ")
    shell.send("\x1a")
    shell.expect(r"Stopped")
    shell.run("bg")
    shell.expect(r"DRIVER child stopped by SIGTSTP; resumed")  # in the background: no hand-over
    wait_for(lambda: state(driver) == "T", message="the job to stop when the child reads")
    shell.run("fg")
    shell.expect(r"DRIVER child stopped by SIGTTIN; resumed")  # printed once continued
    shell.send("dave\r")
    shell.expect(r"GOT dave\n")
    shell.expect(r"DRIVER exit rc=0")
    assert shell.status() == 0
    assert gone(driver, child)


def test_a_restart_while_the_child_waits_at_a_prompt(shell: Shell) -> None:
    driver, first = start(shell, "input")
    shell.expect(r"NAME\? ")
    shell.send("typed for the dead one")  # no Enter: flushed with the first child
    os.kill(driver, signal.SIGHUP)  # the terminal is still there: a restart
    shell.expect(r"DRIVER restart")
    second = int(shell.expect(r"DRIVER child=(\d+)").group(1))
    shell.expect(r"NAME\? ")
    wait_for(lambda: gone(first), message="the first child to end")
    shell.send("zed\r")
    shell.expect(r"GOT zed\n")
    shell.expect(r"DRIVER exit rc=0")
    assert second != first
    assert shell.status() == 0


def test_a_child_killed_while_the_terminal_is_raw_leaves_it_restored(shell: Shell) -> None:
    driver, _ = start(shell, "raw-then-input")
    shell.expect(r"READY")
    os.kill(driver, signal.SIGHUP)
    shell.expect(r"DRIVER restart")
    shell.expect(r"NAME\? ")
    shell.send("line\x7fE\r")  # a canonical terminal again: backspace edits the line
    shell.expect(r"GOT linE\n")
    shell.expect(r"DRIVER exit rc=0")
    assert shell.modes() == "icanon echo"


def test_a_hang_up_stops_the_child_and_the_driver(shell: Shell) -> None:
    driver, child = start(shell, "ignore-hup")
    shell.expect(r"READY")
    shell.hang_up()
    wait_for(lambda: gone(driver, child), message="the driver and the child to end")
    assert "DRIVER hangup" in shell.log.read_text()  # told from a `kill -HUP`: no restart


def test_sigkill_of_the_driver_takes_the_child_and_its_group(shell: Shell) -> None:
    driver, child = start(shell, "grandchild")
    grandchild = int(shell.expect(r"GRANDCHILD pid=(\d+)").group(1))
    shell.expect(r"READY")
    os.kill(driver, signal.SIGKILL)
    wait_for(lambda: gone(child, grandchild), message="the child and grandchild to end")
    shell.expect(re.escape(PROMPT))


def test_started_in_the_background_nothing_is_lent(shell: Shell) -> None:
    shell.run(f"{DRIVER} -- {CHILD} wait &")
    driver = int(shell.expect(r"DRIVER pid=(\d+) terminal=no").group(1))
    child = int(shell.expect(r"DRIVER child=(\d+)").group(1))
    shell.expect(r"READY")
    os.kill(driver, signal.SIGKILL)  # the parent-death signal takes the child
    wait_for(lambda: gone(driver, child), message="the driver and the child to end")


def test_no_terminal_detected_without_a_tty() -> None:
    with open(os.devnull) as devnull:
        assert ForegroundTerminal.detect(devnull.fileno()) is None


def test_without_a_tty_the_parent_death_signal_still_works(
    spawn: Callable[..., Spawned],
) -> None:
    process = spawn([*DRIVER.split(), "--", *CHILD.split(), "wait"])
    wait_for(lambda: "READY" in process.output, message="the child to start")
    assert "terminal=no" in process.output
    child = int(re.findall(r"DRIVER child=(\d+)", process.output)[0])
    os.kill(process.pid, signal.SIGKILL)
    wait_for(lambda: gone(child), message="the child to end")


def test_pdeathsig_wrapper_keeps_the_pid_and_reports_a_missing_command(tmp_path: Path) -> None:
    wrapped = subprocess.Popen(
        pdeathsig_argv([PYTHON, "-c", "import os; print(os.getpid())"]),
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = wrapped.communicate(timeout=DEADLINE_S)
    assert (wrapped.returncode, out.strip()) == (0, str(wrapped.pid))
    missing = subprocess.run(
        pdeathsig_argv([str(tmp_path / "no-such-program")]),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert missing.returncode == 127
    assert "cannot run" in missing.stderr


def test_the_witness_sees_a_signal_to_the_group_even_after_the_child_is_seen_gone() -> None:
    """What the terminal does on Ctrl-C (SIGINT to the whole group at once), without a terminal:
    the child catches it and exits at once; signalled(settle_s) still reports it."""
    catcher = (
        "import signal, sys, time; signal.signal(2, lambda *a: sys.exit(0)); print('READY', "
        "flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([PYTHON, "-c", catcher], process_group=0, stdout=subprocess.PIPE)
    witness = GroupWitness(child.pid)
    try:
        assert witness.signalled() is None
        assert child.stdout is not None and child.stdout.readline() == b"READY\n"
        os.killpg(child.pid, signal.SIGINT)
        assert child.wait(DEADLINE_S) == 0
        assert witness.signalled(settle_s=DEADLINE_S) == signal.SIGINT
        witness.stop()
        assert witness.signalled() == signal.SIGINT  # kept after stop()
    finally:
        witness.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(DEADLINE_S)
        if child.stdout is not None:
            child.stdout.close()


def test_a_stopped_witness_reports_nothing_and_leaves_the_group_alone() -> None:
    child = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)"], process_group=0)
    witness = GroupWitness(child.pid)
    try:
        witness.stop()
        assert witness.signalled() is None  # our SIGKILL is not a keyboard signal
        assert child.poll() is None
    finally:
        child.kill()
        child.wait(DEADLINE_S)


def test_the_witness_kills_the_group_when_the_supervisor_is_gone() -> None:
    child = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)"], process_group=0)
    witness = GroupWitness(child.pid)
    try:
        assert witness._pipe is not None
        os.close(witness._pipe)  # what watchreload's death does to the pipe
        witness._pipe = None
        assert child.wait(DEADLINE_S) == -signal.SIGKILL
        assert witness.signalled(settle_s=DEADLINE_S) == signal.SIGKILL  # it killed itself too
    finally:
        witness.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(DEADLINE_S)
