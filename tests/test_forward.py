"""`watchreload forward` end to end, without a Docker engine.

A bindfs mount stands in for the container's bind mount (an edit to its backing directory sends
no event through it, as on Docker Desktop), a real `watchreload -- child.py` on the mount is the
container side, and `watchreload forward SRC:MOUNT --exec 'python -m watchreload receive'` on
the backing directory, watched by the session's Watchman, is the host side. Both get a private
runtime directory for the socket.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.programs.harness import Watchreload, clean_environ, interrupt_at_teardown
from tests.support import PYTHON, Spawned, wait_for
from tests.test_mounts import fuse_mount  # noqa: F401 - the bindfs fixture, reused as it is
from watchreload.changes import Change
from watchreload.errors import MalformedMessage
from watchreload.forward import protocol
from watchreload.forward.paths import contained_path

Spawn = Callable[..., Spawned]
RECEIVE = shlex.join([PYTHON, "-m", "watchreload", "receive"])
ON_EVENTS = "on forwarded events, polling stopped"
POLLING_AGAIN = "polling every"


@pytest.fixture
def spawn(spawn: Spawn) -> Iterator[Spawn]:
    yield from interrupt_at_teardown(spawn)


@pytest.fixture
def runtime_env() -> Iterator[dict[str, str]]:
    """The environment of both sides, with a runtime directory of the test's own (a short path:
    a unix socket's path is limited to about 100 bytes)."""
    directory = tempfile.mkdtemp(prefix="wr-run-")
    try:
        yield clean_environ(XDG_RUNTIME_DIR=directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def container_side(
    spawn: Spawn, mount_point: Path, state: Path, env: dict[str, str], poll_interval: str = "1"
) -> Watchreload:
    run = Watchreload(
        spawn,
        mount_point,
        state,
        backend="auto",
        options=["--poll-interval", poll_interval],
        env=env,
    )
    wait_for(lambda: "taking file events forwarded" in run.output, message="the socket")
    return run


def start_forwarder(spawn: Spawn, source: Path, mount_point: Path, env: dict[str, str]) -> Spawned:
    args = [PYTHON, "-m", "watchreload", "forward", "--backend", "watchman"]
    return spawn([*args, f"{source}:{mount_point}", "--exec", RECEIVE], cwd=source, env=env)


def wait_on_events(run: Watchreload, times: int = 1) -> None:
    wait_for(
        lambda: run.output.count(ON_EVENTS) >= times,
        message=f"the container side on forwarded events ({times})\n{run.output}",
    )


def stop_forwarder(forwarder: Spawned) -> None:
    forwarder.send_signal(signal.SIGTERM)
    assert forwarder.wait() == 0, forwarder.output


def finish(run: Watchreload, forwarder: Spawned) -> None:
    """Stop the forwarder, then the container side (its child ends by the stop signal)."""
    stop_forwarder(forwarder)
    assert run.stop(signal.SIGINT) == 128 + signal.SIGTERM, run.output


@dataclass
class Mount:
    """The bindfs mount (`source` behind `mount_point`) and what starts either side on it."""

    spawn: Spawn
    source: Path
    mount_point: Path
    tmp_path: Path
    env: dict[str, str]

    def container(self, state: str = "state", poll_interval: str = "60") -> Watchreload:
        return container_side(
            self.spawn, self.mount_point, self.tmp_path / state, self.env, poll_interval
        )

    def forwarder(self) -> Spawned:
        return start_forwarder(self.spawn, self.source, self.mount_point, self.env)

    def forwarded(self, poll_interval: str = "60") -> tuple[Watchreload, Spawned]:
        """Both sides, once the container side is on forwarded events."""
        run = self.container(poll_interval=poll_interval)
        forwarder = self.forwarder()
        wait_on_events(run)
        return run, forwarder


@pytest.fixture
def mount(
    spawn: Spawn,
    fuse_mount: tuple[Path, Path],  # noqa: F811
    tmp_path: Path,
    runtime_env: dict[str, str],
    watchman_daemon: object,
) -> Mount:
    source, mount_point = fuse_mount
    return Mount(spawn, source, mount_point, tmp_path, runtime_env)


def test_edits_renames_deletes_and_new_directories_restart_once_each(mount: Mount) -> None:
    source = mount.source
    (source / "pkg").mkdir()
    (source / "pkg" / "mod.py").write_text("VALUE = 1\n")
    run, forwarder = mount.forwarded(poll_interval="30")

    (source / "app.py").write_text("print('v2')\n")  # an edit
    run.wait_starts(2)
    saved = source / ".app.py.tmp"
    saved.write_text("print('v3')\n")
    os.replace(saved, source / "app.py")  # an atomic rename-save
    run.wait_starts(3)
    (source / "pkg" / "mod.py").unlink()  # a delete
    run.wait_starts(4)
    (source / "new" / "deeper").mkdir(parents=True)
    (source / "new" / "deeper" / "fresh.py").write_text("")  # a new file in a new directory
    records = run.wait_starts(5)
    run.stays_at(5)
    assert "pkg/mod.py deleted" in run.output
    assert "new/deeper/fresh.py added" in run.output
    assert records[-1]["changes"]
    finish(run, forwarder)


def test_a_5000_file_checkout_is_one_restart(mount: Mount) -> None:
    source = mount.source
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(source)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    subprocess.run([*git, "checkout", "-qb", "big"], check=True)
    generated = source / "generated"
    generated.mkdir()
    for i in range(5000):
        (generated / f"module_{i:04d}.py").write_text(f"N = {i}\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "big"], check=True)
    subprocess.run([*git, "checkout", "-q", "main"], check=True)
    run, forwarder = mount.forwarded(poll_interval="30")

    subprocess.run([*git, "checkout", "-q", "big"], check=True)
    run.wait_starts(2, timeout_s=30)
    run.stays_at(2, duration_s=1.0)
    assert "5,000 files changed" in run.output
    finish(run, forwarder)


def test_an_edit_to_gitignore_on_the_host_reaches_the_container_s_rules(mount: Mount) -> None:
    source = mount.source
    subprocess.run(["git", "init", "-q", str(source)], check=True)
    (source / ".gitignore").write_text("generated/\n")
    (source / "generated").mkdir()
    run, forwarder = mount.forwarded()
    (source / "generated" / "ignored.py").write_text("")
    run.stays_at(1)
    (source / ".gitignore").write_text("# nothing ignored any more\n")
    applied = "git ignore rules changed; applying them from now on"
    wait_for(lambda: applied in run.output, message=f"the container's rules\n{run.output}")
    (source / "generated" / "kept.py").write_text("")
    run.wait_starts(2)
    run.stays_at(2)
    assert "generated/kept.py added" in run.output
    finish(run, forwarder)


def test_a_restarted_forwarder_loses_no_edit_and_polling_covers_the_gap(mount: Mount) -> None:
    source = mount.source
    # Polling too slow to see anything within the test: the edit below is found by the rescan.
    run, forwarder = mount.forwarded()
    forwarder.popen.kill()  # no goodbye: the relay's stdin ends, the connection closes
    forwarder.wait()
    wait_for(lambda: POLLING_AGAIN in run.output, message=f"polling again\n{run.output}")

    (source / "app.py").write_text("print('edited while no forwarder ran')\n")
    run.stays_at(1, duration_s=0.5)  # polling (every 60 s here) has not seen it yet
    forwarder = mount.forwarder()
    run.wait_starts(2)  # the rescan that follows the new forwarder's hello
    wait_on_events(run, times=2)
    (source / "app.py").write_text("print('and on events again')\n")
    run.wait_starts(3)
    run.stays_at(3)
    finish(run, forwarder)


def test_the_forwarder_says_once_that_the_stream_ended_and_reconnects(mount: Mount) -> None:
    source = mount.source
    first = mount.container("first")
    forwarder = mount.forwarder()
    wait_on_events(first)
    assert first.stop(signal.SIGINT) == 128 + signal.SIGTERM, first.output  # the container restarts
    ended = "the stream into the container ended"
    wait_for(lambda: ended in forwarder.output, message=f"the line\n{forwarder.output}")

    second = mount.container("second")
    wait_on_events(second)  # the forwarder's next try, with backoff
    (source / "app.py").write_text("print('after the container restarted')\n")
    second.wait_starts(2)
    wait_for(lambda: "forwarding again after" in forwarder.output, message=forwarder.output)
    assert forwarder.output.count(ended) == 1, forwarder.output
    finish(second, forwarder)


def test_forged_and_malformed_lines_are_rejected_and_counted(
    spawn: Spawn,
    fuse_mount: tuple[Path, Path],  # noqa: F811
    tmp_path: Path,
    runtime_env: dict[str, str],
) -> None:
    source, mount_point = fuse_mount
    (tmp_path / "outside.py").write_text("SECRET = 1\n")
    (source / "link.py").symlink_to(tmp_path / "outside.py")
    run = container_side(spawn, mount_point, tmp_path / "state", runtime_env, poll_interval="60")
    root = str(mount_point)
    forged = [
        protocol.encode(protocol.hello((root,), "forged")),
        protocol.encode(
            protocol.changes(
                root,
                (
                    (Change.modified, "../outside.py"),
                    (Change.modified, "/etc/passwd"),
                    (Change.modified, "link.py"),
                ),
            )
        ),
        b"{not json\n",
        b'{"v": 1, "type": "run", "command": "rm -rf /"}\n',
    ]
    relay = subprocess.run(
        [PYTHON, "-m", "watchreload", "receive"],
        input=b"".join(forged),
        env=runtime_env,
        capture_output=True,
        timeout=15,
    )
    assert relay.returncode == 0, relay.stderr
    summary = "forwarder 1 went away; it sent 3 rejected paths and 2 malformed lines"
    wait_for(lambda: summary in run.output, message=f"the rejections\n{run.output}")
    assert "rejected forwarded path '../outside.py'" in run.output
    assert "skipped a malformed line from forwarder 1 (not JSON" in run.output
    run.stays_at(1)
    assert run.stop(signal.SIGINT) == 128 + signal.SIGTERM, run.output


def test_receive_without_a_watchreload_listening_says_so(runtime_env: dict[str, str]) -> None:
    relay = subprocess.run(
        [PYTHON, "-m", "watchreload", "receive"],
        input=protocol.encode(protocol.hello(("/nowhere",), "test")),
        env=runtime_env,
        capture_output=True,
        timeout=15,
    )
    assert relay.returncode == 1
    lines = relay.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "watchreload: error: no watchreload takes forwarded events for /nowhere here"
    )


def test_forward_without_a_way_in_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [PYTHON, "-m", "watchreload", "forward", f"{tmp_path}:/app"],
        env=clean_environ(),
        capture_output=True,
        timeout=15,
    )
    assert done.returncode == 2
    assert b"pass --container NAME" in done.stderr


def test_only_paths_inside_the_container_directory_are_taken(tmp_path: Path) -> None:
    root = tmp_path / "app"
    (root / "pkg").mkdir(parents=True)
    (tmp_path / "secret.py").write_text("")
    (root / "out.py").symlink_to(tmp_path / "secret.py")
    (root / "outdir").symlink_to(tmp_path)
    watched = [root]
    assert contained_path(str(root), "pkg/a.py", watched) == root / "pkg" / "a.py"
    for forged in ("../secret.py", "pkg/../../secret.py", "/etc/passwd", "out.py", "outdir/x.py"):
        assert contained_path(str(root), forged, watched) is None, forged
    assert contained_path(str(root), "", watched) is None
    assert contained_path(str(tmp_path), "secret.py", watched) is None  # not a watched root


def test_messages_round_trip_and_anything_else_is_malformed() -> None:
    message = protocol.changes("/app", ((Change.deleted, "a b/c.py"),))
    assert protocol.decode(protocol.encode(message)) == message
    for line in (b"[]", b'{"v": 2, "type": "hello"}', b'{"v": 1, "type": "changes", "root": "x"}'):
        with pytest.raises(MalformedMessage):
            protocol.decode(line)


def test_a_repeated_event_changes_nothing_and_a_pause_holds_the_batch(tmp_path: Path) -> None:
    from watchreload.forward.listener import Connection
    from watchreload.forward.reloader import ForwardedReloader

    (tmp_path / "a.py").write_text("A = 1\n")
    reloader = ForwardedReloader(interval_s=60, gitignore=False, watch_modules=False)
    reloader.watch_dir(tmp_path, "**/*.py")
    reloader._take_baseline()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        connection = Connection(1, ours)
        reloader.message(connection, protocol.hello((str(tmp_path),), "test"))
        edit = protocol.changes(str(tmp_path), ((Change.modified, "a.py"),))
        (tmp_path / "a.py").write_text("A = 22\n")
        reloader.message(connection, edit)
        batch = reloader.wait_for_changes(5)
        assert batch is not None and batch.changes == {tmp_path / "a.py": Change.modified}
        reloader.message(connection, edit)  # the same event again: the file did not change
        assert reloader.wait_for_changes(0.2) is None

        reloader.message(connection, protocol.Message("pause"))
        (tmp_path / "a.py").unlink()
        reloader.message(connection, protocol.changes(str(tmp_path), ((Change.deleted, "a.py"),)))
        assert reloader.wait_for_changes(0.2) is None  # held while the host's VCS state lasts
        reloader.closed(connection)  # a forwarder that goes away releases what it held
        batch = reloader.wait_for_changes(5)
        assert batch is not None and batch.changes == {tmp_path / "a.py": Change.deleted}
    reloader.stop()
