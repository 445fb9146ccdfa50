"""process.py and procfs.py with real processes: starting, stopping groups, /proc, exit statuses.

Whether a process is still alive is read with the tests' own /proc reader (`alive`), not with the
code under test.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.programs.harness import CHILD, alive
from tests.support import PYTHON, wait_for
from watchreload import process
from watchreload.errors import CommandNotExecutable, CommandNotFound
from watchreload.process import (
    ChildProcess,
    describe_status,
    exit_status,
    signal_name,
    watching,
)
from watchreload.procfs import command_line, parent_of, pid_exists, read_stat
from watchreload.reloaders.stat import StatReloader

Start = Callable[..., tuple[ChildProcess, dict[str, Any]]]


@pytest.fixture
def start_child(tmp_path: Path) -> Iterator[Start]:
    """Start tests/programs/child.py as a ChildProcess and wait for its record; at teardown kill
    whatever is left, by process group (own group) or pid, and fail if anything was."""
    started: list[tuple[ChildProcess, dict[str, Any]]] = []

    def _start(*child_args: str, own_group: bool = True) -> tuple[ChildProcess, dict[str, Any]]:
        starts = tmp_path / f"starts-{len(started)}.jsonl"
        child = ChildProcess(
            [PYTHON, str(CHILD), "--starts", str(starts), *child_args], own_group=own_group
        )
        child.start()
        wait_for(lambda: starts.exists() and starts.read_text().endswith("\n"), message="a start")
        record: dict[str, Any] = json.loads(starts.read_text())
        started.append((child, record))
        return child, record

    yield _start
    leaks = []
    for child, record in started:
        pids = [record["pid"], record["grandchild"]]
        left = [pid for pid in pids if pid is not None and alive(pid)]
        if left:
            leaks.append(left)
            with contextlib.suppress(ProcessLookupError):
                if child.own_group:
                    os.killpg(record["pgid"], signal.SIGKILL)
                else:
                    os.kill(record["pid"], signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(10)
    assert not leaks, f"processes left running: {leaks}"


def test_stopping_a_group_stops_the_grandchild_too(start_child: Start, tmp_path: Path) -> None:
    child, record = start_child("--grandchild", str(tmp_path / "gc"))
    assert record["pgid"] == record["pid"] == child.pid  # the leader of a group of its own
    assert alive(record["grandchild"])
    assert child.stop(signal.SIGTERM, 5.0) == -signal.SIGTERM
    assert not alive(record["pid"])
    assert not alive(record["grandchild"])


def test_a_child_that_ignores_the_stop_signal_is_killed_after_the_timeout(
    start_child: Start, caplog: pytest.LogCaptureFixture
) -> None:
    child, record = start_child("--ignore-sigterm")
    with caplog.at_level(logging.INFO, logger="watchreload.process"):
        assert child.stop(signal.SIGTERM, 0.3) == -signal.SIGKILL
    assert not alive(record["pid"])
    assert "did not stop within 0.3s of SIGTERM; sending SIGKILL" in caplog.text


def test_the_group_is_waited_for_until_it_is_empty(start_child: Start, tmp_path: Path) -> None:
    crash = tmp_path / "crash"
    crash.touch()
    child, record = start_child(
        "--grandchild",
        str(tmp_path / "gc"),
        "--grandchild-ignores-sigterm",
        "--crash-when",
        str(crash),
    )
    wait_for(lambda: child.poll() is not None, message="the child to exit by itself")
    assert alive(record["grandchild"])
    assert child.running(), "what is left of the group counts as running"
    assert child.stop(signal.SIGTERM, 0.3) == 3  # the child's own status
    assert not alive(record["grandchild"]), "stop() returned before the group was empty"
    assert not child.running()


def test_hurry_ends_the_grace_period(start_child: Start, caplog: pytest.LogCaptureFixture) -> None:
    child, _ = start_child("--ignore-sigterm")
    with caplog.at_level(logging.INFO, logger="watchreload.process"):
        assert child.stop(signal.SIGTERM, 60.0, hurry=lambda: True) == -signal.SIGKILL
    assert "asked to stop again; sending SIGKILL" in caplog.text


def test_a_stopped_child_is_seen_and_still_stops(start_child: Start) -> None:
    child, _ = start_child()
    assert child.stopped_by() is None
    child.send_signal(signal.SIGSTOP)
    wait_for(lambda: child.stopped_by() == signal.SIGSTOP, message="the child to be stopped")
    assert child.stop(signal.SIGTERM, 5.0) == -signal.SIGTERM  # SIGCONT lets it act on SIGTERM


def test_a_child_in_our_group_is_waited_for_then_killed(start_child: Start) -> None:
    # Library mode: the terminal already delivered the signal (None), so stop() only waits.
    child, record = start_child(own_group=False)
    assert record["pgid"] == os.getpgid(0)
    assert child.stop(None, 0.2) == -signal.SIGKILL
    assert not alive(record["pid"])


def test_a_command_that_cannot_start(tmp_path: Path) -> None:
    with pytest.raises(CommandNotFound, match="not found"):
        ChildProcess([str(tmp_path / "missing")]).start()
    script = tmp_path / "script.py"
    script.write_text("print('no x bit')\n")
    with pytest.raises(CommandNotExecutable, match="cannot be run"):
        ChildProcess([str(script)]).start()


def test_exit_status_and_its_description() -> None:
    assert exit_status(0) == 0
    assert exit_status(7) == 7
    assert exit_status(-signal.SIGTERM) == 143
    assert exit_status(-signal.SIGKILL) == 137
    assert describe_status(3) == "exited with status 3"
    assert describe_status(-signal.SIGKILL) == "was killed by SIGKILL"
    assert signal_name(signal.SIGTTIN) == "SIGTTIN"
    assert signal_name(999) == "signal 999"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux's /proc")
def test_proc_readers(start_child: Start) -> None:
    stat = read_stat(os.getpid())
    assert stat is not None and stat.live
    assert (stat.ppid, stat.pgid, stat.sid) == (os.getppid(), os.getpgid(0), os.getsid(0))
    child, _ = start_child()
    assert parent_of(child.pid) == os.getpid()
    assert command_line(child.pid)[:2] == [PYTHON, str(CHILD)]
    assert pid_exists(child.pid)
    child.stop(signal.SIGTERM)
    assert read_stat(child.pid) is None  # reaped
    assert command_line(child.pid) == []
    assert not pid_exists(child.pid)


def test_watching_starts_the_block_once_the_watcher_is_ready(tmp_path: Path) -> None:
    reloader = StatReloader(watch_modules=False, interval_s=0.05)
    reloader.watch_dir(tmp_path, "**/*.py")
    with watching(reloader, "the test"):
        assert reloader.ready.is_set()
    assert reloader.should_stop
    assert reloader._thread is not None and not reloader._thread.is_alive()


class NeverReady:
    """A watcher that never gets ready: a slow first crawl, which cannot be made on demand."""

    name = "never"
    error: BaseException | None = None
    should_stop = False

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def wait_until_ready(self, timeout_s: float) -> bool:
        self.calls.append("wait")
        time.sleep(timeout_s)
        return False

    def stop(self) -> None:
        self.calls.append("stop")

    def join(self, timeout_s: float | None = None) -> None:
        self.calls.append(f"join {timeout_s}")


def test_watching_starts_anyway_after_the_ready_timeout(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "READY_TIMEOUT_S", 0.5)
    monkeypatch.setattr(process, "WAIT_REPORT_AFTER_S", 0.2)
    watcher = NeverReady()
    with caplog.at_level(logging.INFO, logger="watchreload.process"), watching(watcher, "it"):
        watcher.calls.append("block")
    assert watcher.calls[0] == "start" and set(watcher.calls[1:-3]) == {"wait"}
    assert watcher.calls[-3:] == ["block", "stop", f"join {process.WATCHER_JOIN_TIMEOUT_S}"]
    assert "waiting for the never watcher; 0 s so far" in caplog.text  # it has no waiting_for
    assert "the never watcher is still not ready after 0.5s; starting it anyway" in caplog.text
