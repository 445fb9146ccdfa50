"""watchreload.terminal on a real pseudo-terminal, under a real job-control shell.

Each test types into an interactive bash on a fresh pty (tests/ptys.py). The shell runs
tests/programs/tty_driver.py, which plays the Supervisor's part over tests/programs/tty_child.py.
Whatever is left in the shell's session is SIGKILLed by pid at teardown and reported as a leak.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.programs.harness import alive
from tests.ptys import DEADLINE_S, NEEDS_A_PTY, PROMPT, Shell, shell_session
from tests.support import PYTHON, Spawned, wait_for
from watchreload.terminal import ForegroundTerminal, GroupWitness

PROGRAMS = Path(__file__).parent / "programs"
DRIVER = f"{PYTHON} {PROGRAMS / 'tty_driver.py'}"
CHILD = f"{PYTHON} {PROGRAMS / 'tty_child.py'}"


pytestmark = NEEDS_A_PTY


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    with shell_session(tmp_path) as shell:
        yield shell


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
    os.kill(driver, signal.SIGKILL)  # the witness takes the child
    wait_for(lambda: gone(driver, child), message="the driver and the child to end")


def test_no_terminal_detected_without_a_tty() -> None:
    with open(os.devnull) as devnull:
        assert ForegroundTerminal.detect(devnull.fileno()) is None


def test_without_a_tty_the_witness_still_takes_the_group_when_the_driver_dies(
    spawn: Callable[..., Spawned],
) -> None:
    process = spawn([*DRIVER.split(), "--", *CHILD.split(), "wait"])
    wait_for(lambda: "READY" in process.output, message="the child to start")
    assert "terminal=no" in process.output
    child = int(re.findall(r"DRIVER child=(\d+)", process.output)[0])
    os.kill(process.pid, signal.SIGKILL)
    wait_for(lambda: gone(child), message="the child to end")


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


def test_the_witness_reports_a_signal_to_the_group_while_the_child_lives_on() -> None:
    """pdb after `c`, or any child that survives Ctrl-C: signalled() without settle_s sees it."""
    survivor = (
        "import signal, time; signal.signal(2, signal.SIG_IGN); print('READY', flush=True); "
        "time.sleep(60)"
    )
    child = subprocess.Popen([PYTHON, "-c", survivor], process_group=0, stdout=subprocess.PIPE)
    witness = GroupWitness(child.pid)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"READY\n"
        os.killpg(child.pid, signal.SIGINT)
        wait_for(lambda: witness.signalled() == signal.SIGINT, message="the witness to report")
        assert child.poll() is None
    finally:
        witness.stop()
        child.kill()
        child.wait(DEADLINE_S)
        if child.stdout is not None:
            child.stdout.close()
