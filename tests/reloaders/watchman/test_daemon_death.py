"""The Watchman daemon dies under a running reloader (`kill -9`, an OOM kill, `shutdown-server`).

Each test starts a private daemon in its own short directory and points WATCHMAN_SOCK at it (the
session's `watchman_daemon` is shared by every test, so it is not the one to kill), or, for the
per-user daemon that `watchman get-sockname` starts, a TMPDIR of its own with no WATCHMAN_SOCK.
Every daemon started here is stopped by pid at teardown.
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

import pytest

from tests.programs.harness import Watchreload, alive, clean_environ, interrupt_at_teardown
from tests.support import (
    Spawned,
    WatchmanDaemon,
    changes_of,
    collect,
    make_tree,
    stays,
    wait_for,
)
from watchreload.changes import ChangeSet
from watchreload.reloaders.watchman import WatchmanReloader

pytestmark = pytest.mark.watchman

TREE_FILES = 10_000
PICKED_UP_WITHIN_S = 2.0  # from the edit, 100 ms after the kill, to its batch

Spawn = Callable[..., Spawned]


@pytest.fixture
def daemon(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WatchmanDaemon]:
    """A daemon of this test's own (socket paths are limited to about 100 bytes: a short dir)."""
    private = WatchmanDaemon(tmp_path_factory.mktemp("wd", numbered=True))
    private.start()
    monkeypatch.setenv("WATCHMAN_SOCK", str(private.sockname))
    try:
        yield private
    finally:
        private.stop()


@pytest.fixture
def tree(tmp_path: Path) -> list[Path]:
    return make_tree(tmp_path / "tree", TREE_FILES)


@pytest.fixture
def reloaders() -> Iterator[Callable[[Path], WatchmanReloader]]:
    started: list[WatchmanReloader] = []

    def _start(root: Path) -> WatchmanReloader:
        reloader = WatchmanReloader(watch_modules=False)
        reloader.watch_dir(root, "**/*.py")
        started.append(reloader)
        reloader.start()
        wait_for(reloader.ready.is_set, timeout_s=60, message="the reloader to subscribe")
        return reloader

    yield _start
    for reloader in started:
        reloader.stop()
        reloader.join(10)
        assert reloader.error is None, f"the reloader failed: {reloader.error!r}"


def edit(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def kill_and_edit(daemon: WatchmanDaemon, path: Path) -> float:
    """`kill -9` the daemon, edit `path` 100 ms later; return when the edit was made."""
    daemon.kill(keep_socket=True)
    time.sleep(0.1)  # the scenario: an edit right after the daemon died
    edit(path, "edited after the daemon died\n")
    return time.monotonic()


def next_batch(reloader: WatchmanReloader, within_s: float) -> ChangeSet:
    started = time.monotonic()
    batch = reloader.wait_for_changes(within_s)
    if batch is None:
        late = reloader.wait_for_changes(10)
        took = time.monotonic() - started
        raise AssertionError(
            f"nothing reported within {within_s}s (polling={reloader.polling}); "
            + (f"{late} came after {took:.1f}s" if late else "nor 10 s later")
        )
    return batch


def test_edit_after_kill_is_picked_up_by_polling_at_once(
    daemon: WatchmanDaemon,
    tree: list[Path],
    reloaders: Callable[[Path], WatchmanReloader],
    caplog: pytest.LogCaptureFixture,
) -> None:
    reloader = reloaders(tree[0].parent.parent)
    caplog.set_level(logging.INFO, logger="watchreload")
    edit(tree[50], "edited and reported before the kill\n")
    assert changes_of([next_batch(reloader, 5.0)]) == {tree[50]: "modified"}
    kill_and_edit(daemon, tree[12])
    batch = next_batch(reloader, PICKED_UP_WITHIN_S)
    # Not tree[50]: written since the subscription began, but as the daemon last reported it.
    assert changes_of([batch]) == {tree[12]: "modified"} and not batch.reason
    assert reloader.polling
    extra = collect(reloader, first_s=1.5)
    assert extra == [], f"nothing else, no conservative reload: {extra}"
    edit(tree[99], "edited while polling\n")
    assert changes_of([next_batch(reloader, PICKED_UP_WITHIN_S)]) == {tree[99]: "modified"}
    switches = [r.getMessage() for r in caplog.records if r.name.startswith("watchreload")]
    assert len(switches) == 1 and "polling the watched files" in switches[0], switches
    assert str(daemon.sockname) in switches[0]


def test_daemon_restarted_events_resume_nothing_lost(
    daemon: WatchmanDaemon,
    tree: list[Path],
    reloaders: Callable[[Path], WatchmanReloader],
    caplog: pytest.LogCaptureFixture,
) -> None:
    reloader = reloaders(tree[0].parent.parent)
    caplog.set_level(logging.INFO, logger="watchreload")
    connections = reloader.connections
    kill_and_edit(daemon, tree[1])
    assert changes_of([next_batch(reloader, PICKED_UP_WITHIN_S)]) == {tree[1]: "modified"}
    assert reloader.polling

    edit(tree[2], "edited just before the daemon came back\n")
    daemon.start()
    wait_for(
        lambda: not reloader.polling and reloader.connections > connections,
        message="the reloader to go back to events",
    )
    edit(tree[3], "edited once back on events\n")
    batches = collect(reloader, quiet_s=1.5)
    # The edit made while polling came from the scanner (a poll, or the last one after the new
    # subscription's clock), the next one from the daemon: no conservative reload, no storm.
    assert [set(b.changes) for b in batches] in ([{tree[2]}, {tree[3]}], [{tree[2], tree[3]}])
    assert all(not b.reason for b in batches)
    assert reloader._session is not None and reloader.subscriptions

    edit(tree[4], "and again\n")
    assert changes_of([next_batch(reloader, 2.0)]) == {tree[4]: "modified"}
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("watchreload")]
    assert len(messages) == 2, messages  # lost -> polling; back on events
    assert "polling the watched files" in messages[0]
    assert "back on events" in messages[1]


# -- the per-user daemon (no WATCHMAN_SOCK) is started again -------------------------------------


def default_daemon_pid(env: dict[str, str]) -> int | None:
    result = subprocess.run(
        ["watchman", "--no-spawn", "--no-local", "--output-encoding=json", "get-pid"],
        capture_output=True,
        text=True,
        env=env,
        timeout=10,
        check=False,
    )
    return int(json.loads(result.stdout)["pid"]) if result.returncode == 0 else None


@pytest.fixture
def default_daemon_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """No WATCHMAN_SOCK, and a TMPDIR of our own: `watchman get-sockname` starts a per-user daemon
    there (and not in the developer's /tmp); at teardown it is killed by its pid."""
    tmpdir = tmp_path_factory.mktemp("wu", numbered=True)
    monkeypatch.delenv("WATCHMAN_SOCK", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    env = dict(os.environ)
    subprocess.run(["watchman", "get-sockname"], env=env, capture_output=True, timeout=20)
    first = wait_for(lambda: default_daemon_pid(env), message="the per-user daemon to start")
    assert first is not None
    pids = [first]
    try:
        yield env
    finally:
        respawned = default_daemon_pid(env)
        if respawned is not None:
            pids.append(respawned)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not any(map(alive, pids)), message=f"daemons {pids} to be gone")


def test_per_user_daemon_is_started_again(
    default_daemon_env: dict[str, str],
    tmp_path: Path,
    reloaders: Callable[[Path], WatchmanReloader],
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "proj"
    paths = make_tree(root, 20)
    reloader = reloaders(root)
    caplog.set_level(logging.INFO, logger="watchreload")
    pid = default_daemon_pid(default_daemon_env)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: default_daemon_pid(default_daemon_env) not in (None, pid),
        message="the daemon to be started again",
    )
    batches = collect(reloader)
    assert len(batches) == 1 and "Watchman restarted" in batches[0].reason  # one, not a flood
    assert not reloader.polling
    edit(paths[3], "edited after the daemon was started again\n")
    assert changes_of([next_batch(reloader, 5.0)]) == {paths[3]: "modified"}
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("watchreload")]
    started = [m for m in messages if "started it again" in m]
    assert len(started) == 1, messages
    assert len([m for m in messages if "Watchman lost track" in m]) == 1, messages


# -- the user's view: the real CLI ---------------------------------------------------------------


@pytest.fixture
def spawn(spawn: Spawn) -> Iterator[Spawn]:
    yield from interrupt_at_teardown(spawn)


def test_cli_restarts_the_child_after_the_daemon_is_killed(
    spawn: Spawn, daemon: WatchmanDaemon, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    app = tree / "app.py"
    app.write_text("print('app')\n")
    run = Watchreload(
        spawn,
        tree,
        tmp_path / "state",
        backend="watchman",
        env=clean_environ(WATCHMAN_SOCK=str(daemon.sockname)),
    )
    edited_at = kill_and_edit(daemon, app)
    run.wait_starts(2, timeout_s=10)
    took = time.monotonic() - edited_at
    assert took < 5, f"the new child started {took:.1f}s after the edit:\n{run.output}"
    assert "polling the watched files" in run.output and "app.py modified" in run.output
    assert stays(lambda: run.count() == 2, 1.5), run.output
    assert run.stop(signal.SIGINT) == 128 + signal.SIGTERM, run.output
