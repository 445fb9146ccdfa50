"""`--preload` in the foreground of a real pseudo-terminal: a forked child gets the terminal.

As tests/test_tty_cli.py, but the child is forked from the template: its input(), pdb and a
Ctrl-C that ends it and watchreload behave as under exec, and nothing is left afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.preload.conftest import alive
from tests.ptys import NEEDS_A_PTY, PROMPT, Shell, shell_session
from tests.support import wait_for
from tests.test_tty_cli import Child, edit, nothing_left, parent, start, started

pytestmark = NEEDS_A_PTY

READY = "preload: template ready"
OPTIONS = ("--preload", "--scope", "tree")  # tty_child.py does not import the edited app.py


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    with shell_session(tmp_path) as shell:
        yield shell


def forked_start(
    shell: Shell, tree: Path, mode: str, finish: Callable[[], object]
) -> tuple[Child, int]:
    """Edit until a restart is forked; `finish` deals with each child started by exec meanwhile.

    Returns the child (with watchreload's pid) and the template's pid."""
    for _ in range(10):
        ready = shell.screen.count(READY)
        edit(tree)
        how = shell.expect(r"restarting: \S*app\.py modified \(([^)\n]*)").group(1)
        child = started(shell, mode)
        if how.startswith("forked"):
            template = child.watchreload  # the child's parent
            watchreload = parent(template)
            assert template != watchreload and parent(watchreload) == shell.session
            return child._replace(watchreload=watchreload), template
        finish()
        wait_ready(shell, ready)
    raise AssertionError(f"no restart was forked:\n{shell.screen}")


def wait_ready(shell: Shell, seen: int) -> None:
    wait_for(lambda: shell.read_screen().count(READY) > seen, 60, message=READY)


def answer_input(shell: Shell, name: str) -> None:
    shell.expect(r"NAME\? ")
    shell.send(f"{name}\r")
    shell.expect(rf"GOT {name}\n")
    shell.expect(r"exited with status 0; waiting for a change")


def test_input_in_a_forked_child(shell: Shell, tree: Path) -> None:
    start(shell, tree, "input", *OPTIONS)
    answer_input(shell, "first")
    child, template = forked_start(shell, tree, "input", lambda: answer_input(shell, "exec"))
    answer_input(shell, "forked")
    wait_for(lambda: shell.foreground() == child.watchreload, message="watchreload in front")
    shell.send("\x03")
    shell.expect(re.escape(PROMPT))
    assert shell.status() == 0  # the child's last status
    assert nothing_left(child.pgid) and not alive(template)


def test_pdb_in_a_forked_child(shell: Shell, tree: Path) -> None:
    def through_pdb() -> None:
        shell.expect(r"\(Pdb\) ")
        shell.send("c\r")
        shell.expect(r"AFTER 6\n")
        shell.expect(r"exited with status 0; waiting for a change")

    start(shell, tree, "breakpoint", *OPTIONS)
    through_pdb()
    child, _ = forked_start(shell, tree, "breakpoint", through_pdb)
    shell.expect(r"\(Pdb\) ")
    shell.send("p 6*7\r")
    shell.expect(r"\n42\n")
    through_pdb()
    wait_for(lambda: shell.foreground() == child.watchreload, message="watchreload in front")
    shell.send("\x03")
    shell.expect(re.escape(PROMPT))
    assert shell.status() == 0


def test_one_ctrl_c_ends_a_forked_child_and_watchreload(shell: Shell, tree: Path) -> None:
    start(shell, tree, "wait", *OPTIONS)
    shell.expect(r"READY\n")
    child, template = forked_start(shell, tree, "wait", lambda: shell.expect(r"READY\n"))
    shell.expect(r"READY\n")
    shell.send("\x03")
    shell.expect(r"SIGINT from the terminal; stopping")
    shell.expect(re.escape(PROMPT))
    assert shell.status() == 130  # SIGINT killed the child, as under exec
    assert not alive(child.watchreload) and not alive(template)
    assert nothing_left(child.pgid, child.watchreload)
    assert shell.members() == []
    assert shell.modes() == "icanon echo"


def test_ctrl_z_stops_a_forked_child_and_watchreload_and_fg_resumes_both(
    shell: Shell, tree: Path
) -> None:
    start(shell, tree, "input", *OPTIONS)
    answer_input(shell, "first")
    child, template = forked_start(shell, tree, "input", lambda: answer_input(shell, "exec"))
    shell.expect(r"NAME\? ")
    shell.send("\x1a")
    shell.expect(r"Stopped")
    shell.expect(re.escape(PROMPT))
    shell.run("jobs -l")
    shell.expect(rf"{child.watchreload} Stopped")
    shell.run("fg")
    wait_for(lambda: shell.foreground() == child.pgid, message="the forked child in front again")
    shell.send("carol\r")
    shell.expect(r"GOT carol\n")
    shell.expect(r"exited with status 0; waiting for a change")
    wait_for(lambda: shell.foreground() == child.watchreload, message="watchreload in front")
    shell.send("\x03")
    shell.expect(re.escape(PROMPT))
    assert shell.status() == 0
    assert nothing_left(child.pgid, child.watchreload) and not alive(template)
