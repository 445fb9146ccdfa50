from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.preload.programs import write_project
from tests.support import wait_for
from watchreload.preload.client import ForkedChild, Template

StartTemplate = Callable[..., Template]


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (read from /proc by the tests themselves)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return False
    return text[text.rfind(")") + 2 :].split()[0] not in ("Z", "X")


def kill_quietly(pid: int, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        (os.killpg if group else os.kill)(pid, signal.SIGKILL)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path)


@pytest.fixture
def start_template() -> Iterator[StartTemplate]:
    """Start templates for a command; at teardown close them and fail if a process is left."""
    started: list[Template] = []

    def _start(
        argv: Sequence[str], env: Mapping[str, str], cwd: Path, preload: Sequence[str], **kw: Any
    ) -> Template:
        template = Template.for_command(argv, env, str(cwd), preload, **kw)
        started.append(template)
        return template

    yield _start
    leaks = []
    for template in started:
        template.close()
        if alive(template.pid):
            leaks.append(template.pid)
            kill_quietly(template.pid)
    assert not leaks, f"templates left running: {leaks}"


@pytest.fixture
def forked() -> Iterator[list[ForkedChild]]:
    """Forked children a test registers; at teardown they must be gone (their groups are killed)."""
    children: list[ForkedChild] = []
    yield children
    left = [c.pid for c in children if alive(c.pid)]
    for child in children:
        kill_quietly(child.pid, group=True)
    assert not left, f"forked children left running: {left}"


def run_exec(argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout_s: float = 60) -> int:
    """Run the command the ordinary way, in a group of its own; its returncode."""
    process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, process_group=0)
    try:
        return process.wait(timeout_s)
    finally:
        if process.poll() is None:
            kill_quietly(process.pid, group=True)
            process.wait(10)


def started_pid(out: Path) -> int:
    """The pid a `show.py wait` child wrote once it is waiting for a signal."""
    marker = Path(f"{out}.started")
    text = wait_for(lambda: marker.exists() and marker.read_text(), message=f"{marker}")
    marker.unlink()
    return int(text)
