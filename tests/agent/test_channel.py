"""The receiving channel: the child's environment, per-start state, and untrusted datagrams."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import PYTHON, wait_for
from watchreload.agent.channel import (
    BOOTSTRAP_DIR,
    REPORT_FILE,
    RUN_ENV,
    SOCKET_ENV,
    AgentChannel,
    ensure_bootstrap_bytecode,
    environment_for,
    python_path_with_bootstrap,
    without_agent,
)


@pytest.fixture
def quiet_channel() -> Iterator[AgentChannel]:
    """A channel read by the test itself (drain()), started on its first run."""
    with AgentChannel() as agent_channel:
        agent_channel.start_run([PYTHON], {})
        yield agent_channel


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        yield sock


def report(channel: AgentChannel, **fields: object) -> bytes:
    message: dict[str, object] = {"v": 1, "run": channel.run, "pid": os.getpid(), **fields}
    return (json.dumps(message) + "\n").encode()


# -- the environment --------------------------------------------------------------------------


def test_python_path_puts_the_bootstrap_first_and_keeps_the_users_order() -> None:
    assert python_path_with_bootstrap(None) == str(BOOTSTRAP_DIR)
    assert python_path_with_bootstrap("") == str(BOOTSTRAP_DIR)
    assert python_path_with_bootstrap("/b:/a") == f"{BOOTSTRAP_DIR}:/b:/a"
    # An outer watchreload's bootstrap entry is not repeated.
    assert python_path_with_bootstrap(f"/b:{BOOTSTRAP_DIR}:/a") == f"{BOOTSTRAP_DIR}:/b:/a"


def test_environment_only_for_python_commands(tmp_path: Path) -> None:
    socket_path = tmp_path / "agent.sock"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": "/mine"}
    added = environment_for([PYTHON, "app.py"], env, socket_path, 4)
    assert added == {
        "PYTHONPATH": f"{BOOTSTRAP_DIR}:/mine",
        SOCKET_ENV: str(socket_path),
        RUN_ENV: "4",
    }
    assert environment_for(["sh", "-c", "python app.py"], env, socket_path, 4) == {}
    assert environment_for([PYTHON, "app.py"], env, socket_path, 4, shell=True) == {}
    assert environment_for(["true"], env, socket_path, 4) == {}


def test_without_agent_removes_every_trace() -> None:
    env = {SOCKET_ENV: "/s", RUN_ENV: "2", "PYTHONPATH": f"{BOOTSTRAP_DIR}:/mine", "HOME": "/h"}
    assert without_agent(env) == {"PYTHONPATH": "/mine", "HOME": "/h"}
    assert without_agent({"PYTHONPATH": str(BOOTSTRAP_DIR)}) == {}


def test_the_socket_lives_in_a_private_directory() -> None:
    with AgentChannel() as channel:
        directory = channel.socket_path.parent
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_ISSOCK(channel.socket_path.stat().st_mode)
    assert not directory.exists()


# -- per start --------------------------------------------------------------------------------


def test_reports_accumulate_and_a_new_start_forgets_them(
    quiet_channel: AgentChannel, sender: socket.socket
) -> None:
    target = str(quiet_channel.socket_path)
    sender.sendto(report(quiet_channel, modules=["/app/a.py", "/app/b.py"]), target)
    sender.sendto(report(quiet_channel, failed=["/app/b.py"], listen=["::1", 8000]), target)
    sender.sendto(report(quiet_channel, listen=["127.0.0.1", 9000]), target)
    assert quiet_channel.drain() == 3
    assert quiet_channel.imported_files() == {Path("/app/a.py")}
    assert quiet_channel.failed_files() == {Path("/app/b.py")}
    assert quiet_channel.listening() == ("::1", 8000)  # the first address wins
    assert quiet_channel.listening_seen_at() is not None
    assert quiet_channel.reporting_pids() == {os.getpid()}

    old = report(quiet_channel, modules=["/app/old.py"])
    quiet_channel.start_run([PYTHON], {})
    sender.sendto(old, target)  # a process of the last start, still reporting
    quiet_channel.drain()
    assert quiet_channel.imported_files() == set()
    assert quiet_channel.failed_files() == set()
    assert quiet_channel.listening() is None
    assert quiet_channel.skipped == 0  # stale, not malformed


def test_the_reader_thread_reads_without_being_asked(sender: socket.socket) -> None:
    with AgentChannel() as channel:
        channel.start_run([PYTHON], {})
        channel.start_reader()
        sender.sendto(report(channel, modules=["/app/a.py"]), str(channel.socket_path))
        wait_for(channel.imported_files, message="the reader to take the report")


# -- untrusted datagrams ----------------------------------------------------------------------

MALFORMED: list[bytes] = [
    b"",
    b"not json\n",
    b"\xff\xfe garbage",
    b"[1, 2, 3]\n",
    b'{"v": 2, "run": 1, "pid": 1}\n',
    b"[" * 50_000 + b"]" * 50_000,
    b"x" * 70_000,
]


def test_malformed_and_forged_reports_are_skipped_and_logged_once(
    quiet_channel: AgentChannel, sender: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    target = str(quiet_channel.socket_path)
    bad = [
        *MALFORMED,
        report(quiet_channel, pid=1, modules=["/etc/forged.py"]),  # not the sender's pid
        report(quiet_channel, pid=True),
        report(quiet_channel, pid="123"),
        report(quiet_channel, run="1"),
        report(quiet_channel, modules="/app/a.py"),
        report(quiet_channel, modules=["relative/a.py"]),
        report(quiet_channel, modules=["/app/nul\0.py"]),
        report(quiet_channel, modules=[{"path": "/app/a.py"}]),
        report(quiet_channel, modules=["/" + "a" * 5000]),
        report(quiet_channel, listen=["127.0.0.1"]),
        report(quiet_channel, listen=["127.0.0.1", 70000]),
        report(quiet_channel, listen=[8000, "127.0.0.1"]),
    ]
    good = report(quiet_channel, modules=["/app/ok.py"], extra_field_from_a_newer_agent=1)
    with caplog.at_level(logging.DEBUG, logger="watchreload.agent.channel"):
        for i in range(0, len(bad), 8):  # the queue holds net.unix.max_dgram_qlen datagrams
            for datagram in bad[i : i + 8]:
                sender.sendto(datagram, target)
            quiet_channel.drain()
        sender.sendto(good, target)
        assert quiet_channel.drain() == 1
    assert quiet_channel.skipped == len(bad)
    assert quiet_channel.imported_files() == {Path("/app/ok.py")}
    assert quiet_channel.failed_files() == set()
    assert quiet_channel.listening() is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert len([r for r in caplog.records if "skipping" in r.getMessage()]) == len(bad)


def test_a_forged_pid_is_caught_by_the_kernels_credentials(
    quiet_channel: AgentChannel, sender: socket.socket
) -> None:
    if not hasattr(socket, "SO_PASSCRED"):
        pytest.skip("SO_PASSCRED is Linux only")
    sender.sendto(report(quiet_channel, pid=os.getppid()), str(quiet_channel.socket_path))
    assert quiet_channel.drain() == 0
    assert quiet_channel.skipped == 1


@pytest.mark.parametrize("source", [BOOTSTRAP_DIR / "sitecustomize.py", REPORT_FILE])
def test_the_channel_writes_the_agents_bytecode_for_this_interpreter(source: Path) -> None:
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.unlink(missing_ok=True)
    ensure_bootstrap_bytecode()
    assert cached.stat().st_mtime >= source.stat().st_mtime
