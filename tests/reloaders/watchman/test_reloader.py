"""WatchmanReloader against a real, isolated Watchman daemon (the `watchman_daemon` fixture)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support import (
    BatchRecorder,
    StartWatchman,
    WatchmanDaemon,
    changes_of,
    collect,
    stays,
    wait_for,
)
from watchreload.reloaders.stat import StatReloader
from watchreload.scan import diff_snapshots
from watchreload.spec import DEFAULT_IGNORE_PATTERNS
from watchreload.vcs import STATE_NAME

pytestmark = pytest.mark.watchman


def pywatchman_client() -> object:
    import pywatchman

    return pywatchman.client(timeout=10)


def write(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- the daemon evaluates what WatchSpec.matches() says ------------------------------------------


TREE = [
    "a.py",
    "b.txt",
    ".hidden.py",
    "pkg/__init__.py",
    "pkg/mod.py",
    "pkg/sub/deep.py",
    "pkg/sub/deep.pyc",
    "pkg/__pycache__/mod.cpython-311.pyc",
    "pkg/__pycache__/x.py",
    "node_modules/lib/index.py",
    "pkg/node_modules/lib.py",
    ".git/hooks/x.py",
    ".venv/lib/site.py",
    "docs/conf.py",
    "docs/_build/html/gen.py",
    "docs/build/keep.py",
    "data/[brackets].py",
    "data/space name.py",
    "data/star*.py",
    "data/.dotdir/in.py",
    "data/notes.md",
    "data/abxb.py",
    "cfg/app.cfg",
    "cfg/deeper/app.cfg",
    "pkg/.#lock.py",
    "pkg/mod.py~",
    "4913",
]


@pytest.mark.parametrize(
    "globs",
    [
        ["**/*.py"],
        ["*.py", "*.txt"],
        ["pkg/**", "cfg/*.cfg"],
        ["**/a*b.py", "data/[!s]*.py", "**/*.md"],
        ["**"],
    ],
)
def test_daemon_filter_equals_watchspec_matches(
    start_watchman: StartWatchman, tmp_path: Path, globs: list[str]
) -> None:
    """The expression the daemon evaluates selects exactly the files WatchSpec.matches() does."""
    root = tmp_path / "tree"
    for name in TREE:
        write(root / name)
    ignores = (*DEFAULT_IGNORE_PATTERNS, "docs/_build/**")
    reloader = start_watchman(root, glob=globs[0], ignore_patterns=ignores)
    for glob in globs[1:]:
        reloader.watch_dir(root, glob)
    wait_for(lambda: reloader.spec() == reloader._spec, message="the new globs to be subscribed")
    spec = reloader.spec()
    expected = {root / name for name in TREE if spec.matches(root / name)}
    [(watch_root, sub)] = reloader.subscriptions.items()
    client = pywatchman_client()
    try:
        query = dict(sub.query, fields=["name"])
        result = client.query("query", watch_root, query)  # type: ignore[attr-defined]
    finally:
        client.close()  # type: ignore[attr-defined]
    got = {sub.plan.path_for(name) for name in result["files"]}
    assert got == expected


# -- change delivery ------------------------------------------------------------------------------


def test_edit_add_delete_rename(start_watchman: StartWatchman, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    keep = write(root / "keep.py")
    gone = write(root / "gone.py")
    old = write(root / "pkg" / "old.py")
    reloader = start_watchman(root)

    keep.write_text("x = 2\n")
    assert changes_of(collect(reloader)) == {keep: "modified"}

    new = write(root / "pkg" / "new.py")
    gone.unlink()
    assert changes_of(collect(reloader)) == {new: "added", gone: "deleted"}

    renamed = root / "pkg" / "renamed.py"
    old.rename(renamed)
    assert changes_of(collect(reloader)) == {old: "deleted", renamed: "added"}

    write(root / "notes.txt")
    write(root / "__pycache__" / "keep.py")
    assert collect(reloader, first_s=1.0) == []


def test_same_answers_as_stat_reloader(start_watchman: StartWatchman, tmp_path: Path) -> None:
    """The same edits on the same tree give the same changes from both backends."""
    root = tmp_path / "tree"
    for name in TREE:
        write(root / name)
    globs = ["**/*.py", "cfg/**/*.cfg"]
    stat = StatReloader(watch_modules=False)
    for glob in globs:
        stat.watch_dir(root, glob)
    before = stat.snapshot()
    reloader = start_watchman(root, glob=globs[0])
    reloader.watch_dir(root, globs[1])
    wait_for(lambda: reloader.spec() == reloader._spec, message="the second glob")

    for name in (
        "a.py",
        "pkg/sub/deep.py",
        "cfg/deeper/app.cfg",
        "b.txt",
        "node_modules/lib/index.py",
        "data/space name.py",
        "pkg/sub/deep.pyc",
    ):
        (root / name).write_text("changed = True\n")
    for name in ("pkg/mod.py", "data/notes.md", ".venv/lib/site.py", "data/[brackets].py"):
        (root / name).unlink()
    for name in (
        "new/one.py",
        "docs/_build/new.py",
        "pkg/__pycache__/new.py",
        "cfg/new.cfg",
        "x.txt",
    ):
        write(root / name)

    from_watchman = changes_of(collect(reloader))
    from_stat = {Path(p): c.name for p, c in diff_snapshots(before, stat.snapshot())}
    assert from_watchman == from_stat
    assert len(from_stat) == 9  # 4 modified, 2 deleted, 3 added


def test_one_subscription_per_root_updated_by_watch_dir(
    start_watchman: StartWatchman, tmp_path: Path, watchman_daemon: WatchmanDaemon
) -> None:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)  # a project root for watch-project
    src, lib = project / "src", project / "lib"
    write(src / "a.py")
    write(lib / "b.py")
    reloader = start_watchman(src)
    [(watch_root, sub)] = reloader.subscriptions.items()
    assert Path(watch_root) == project.resolve()
    assert sub.query["relative_root"] == "src"

    def our_subscriptions() -> list[str]:
        client = pywatchman_client()
        try:
            result = client.query("debug-get-subscriptions", watch_root)  # type: ignore[attr-defined]
        finally:
            client.close()  # type: ignore[attr-defined]
        # Watchman 4.9 reports the name as "info"; later versions as {"info": {"name": ...}}.
        names = [
            s["info"] if isinstance(s["info"], str) else s["info"]["name"]
            for s in result["subscribers"]
        ]
        return [name for name in names if name.startswith("watchreload-")]

    assert our_subscriptions() == [sub.name]

    generation = reloader.generation
    reloader.watch_dir(lib, "**/*.py")
    wait_for(lambda: reloader.generation > generation, message="the subscription to be updated")
    [(watch_root_after, sub_after)] = reloader.subscriptions.items()
    assert watch_root_after == watch_root and sub_after.name == sub.name
    assert "relative_root" not in sub_after.query  # now spans src/ and lib/
    assert our_subscriptions() == [sub.name]

    (lib / "b.py").write_text("y = 2\n")
    (src / "a.py").write_text("y = 2\n")
    assert changes_of(collect(reloader)) == {lib / "b.py": "modified", src / "a.py": "modified"}


def test_nonexistent_root_is_watched_through_its_parent(
    start_watchman: StartWatchman, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    later = base / "not" / "yet"
    reloader = start_watchman(later)
    created = write(later / "app.py")
    assert changes_of(collect(reloader)) == {created: "added"}
    write(base / "not" / "outside.py")
    write(base / "not" / "yet.py")
    assert collect(reloader, first_s=1.0) == []


def test_extra_files_join_a_watch_but_libraries_are_stat_checked(
    start_watchman: StartWatchman, tmp_path: Path
) -> None:
    """Extra files (imported modules): your own join a watch; an installed library never starts a
    watch (that would crawl the project holding site-packages) and is stat-checked instead."""
    project = tmp_path / "project"
    settings = write(project / "settings.toml")
    own = write(tmp_path / "elsewhere" / "own_module.py")
    library = write(tmp_path / "venv" / "lib" / "site-packages" / "somelib" / "__init__.py")
    installed_long_ago = library.stat().st_mtime_ns - 3600 * 10**9
    os.utime(library, ns=(installed_long_ago, installed_long_ago))  # as installed packages are
    reloader = start_watchman(project, spec_check_s=0.1)
    generation = reloader.generation
    for path in (settings, own, library):
        reloader.watch_file(path)
    wait_for(lambda: reloader.generation > generation, message="the extra files to be added")
    extra_by_root = {
        Path(root): set(sub.plan.extra_files.values())
        for root, sub in reloader.subscriptions.items()
    }
    assert extra_by_root[project.resolve()] == {settings}
    assert extra_by_root[(tmp_path / "elsewhere").resolve()] == {own}
    assert set(reloader._stat_files.signatures) == {library}
    client = pywatchman_client()
    try:
        roots = client.query("watch-list")["roots"]  # type: ignore[attr-defined]
    finally:
        client.close()  # type: ignore[attr-defined]
    assert not [r for r in roots if "venv" in r]

    settings.write_text("changed = true\n")
    own.write_text("changed = True\n")
    assert changes_of(collect(reloader)) == {settings: "modified", own: "modified"}
    stamp = library.stat().st_mtime_ns + 10**9
    library.write_text("changed = True\n")
    os.utime(library, ns=(stamp, stamp))
    assert changes_of(collect(reloader)) == {library: "modified"}
    library.unlink()
    assert changes_of(collect(reloader)) == {library: "deleted"}


def test_stop_wakes_a_blocked_reader_promptly(
    start_watchman: StartWatchman, tmp_path: Path
) -> None:
    reloader = start_watchman(tmp_path, spec_check_s=60)
    time.sleep(0.2)  # let the reader block in select()
    started = time.monotonic()
    reloader.stop()
    reloader.join(5)
    assert reloader._thread is not None and not reloader._thread.is_alive()
    assert time.monotonic() - started < 1


# -- states ---------------------------------------------------------------------------------------


def test_state_holds_reloads_until_it_is_left(
    start_watchman: StartWatchman, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    files = [write(root / f"m{i}.py") for i in range(50)]
    reloader = start_watchman(root, debounce_ms=20, debounce_max_ms=100)
    [watch_root] = reloader.subscriptions
    client = pywatchman_client()
    try:
        client.query("state-enter", watch_root, STATE_NAME)  # type: ignore[attr-defined]
        wait_for(lambda: reloader.batcher.paused, message="the reloader to see the state")
        for i, path in enumerate(files):
            path.write_text(f"v = {i}\n")
            time.sleep(0.005)  # a slow checkout: longer than debounce_max_ms in total
        assert stays(lambda: reloader.wait_for_changes(0.01) is None, 0.5)
        client.query("state-leave", watch_root, STATE_NAME)  # type: ignore[attr-defined]
        batches = collect(reloader)
    finally:
        client.close()  # type: ignore[attr-defined]
    assert len(batches) == 1
    assert set(batches[0].changes) == set(files)
    assert not reloader.batcher.paused


def test_abandoned_state_releases_reloads(start_watchman: StartWatchman, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    path = write(root / "m.py")
    reloader = start_watchman(root)
    [watch_root] = reloader.subscriptions
    client = pywatchman_client()
    client.query("state-enter", watch_root, STATE_NAME)  # type: ignore[attr-defined]
    wait_for(lambda: reloader.batcher.paused, message="the reloader to see the state")
    path.write_text("v = 2\n")
    client.close()  # type: ignore[attr-defined]  # the tool died: Watchman abandons its state
    assert changes_of(collect(reloader)) == {path: "modified"}
    assert not reloader.batcher.paused


# -- faults ---------------------------------------------------------------------------------------


def test_daemon_killed_and_restarted(
    start_watchman: StartWatchman,
    tmp_path: Path,
    watchman_daemon: WatchmanDaemon,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "proj"
    path = write(root / "app.py")
    reloader = start_watchman(root, fallback_after_s=30)  # back before polling starts
    connections = reloader.connections
    try:
        watchman_daemon.kill()
        wait_for(lambda: reloader._session is None, timeout_s=2, message="the loss to be noticed")
        path.write_text("edited while the daemon was down\n")
    finally:
        watchman_daemon.start()
    wait_for(lambda: reloader.connections > connections, message="the reloader to reconnect")
    batches = collect(reloader)
    assert len(batches) == 1  # one conservative reload for the fresh instance, not a flood
    assert "Watchman restarted" in batches[0].reason
    assert not reloader.polling
    lost_track = [r for r in caplog.records if "Watchman lost track" in r.getMessage()]
    assert len(lost_track) == 1  # the fresh-instance result is handled once

    path.write_text("edited after the restart\n")
    assert changes_of(collect(reloader)) == {path: "modified"}


def test_connection_dropped_resumes_from_last_clock(
    start_watchman: StartWatchman, tmp_path: Path
) -> None:
    """The same daemon, a new connection: resubscribing since the last clock loses nothing."""
    root = tmp_path / "proj"
    path = write(root / "app.py")
    reloader = start_watchman(root)
    connections = reloader.connections
    import socket

    session = reloader._session
    assert session is not None
    path.write_text("edited around the drop\n")
    session.socket.shutdown(socket.SHUT_RDWR)  # the connection breaks, the daemon lives on
    wait_for(lambda: reloader.connections > connections, message="the reloader to reconnect")
    batches = collect(reloader)
    assert changes_of(batches) == {path: "modified"}
    assert all(not b.reason for b in batches)


def test_falls_back_to_polling_and_back(
    start_watchman: StartWatchman, tmp_path: Path, watchman_daemon: WatchmanDaemon
) -> None:
    root = tmp_path / "proj"
    path = write(root / "app.py")
    reloader = start_watchman(root, fallback_after_s=0.3, poll_interval_s=0.1)
    connections = reloader.connections
    try:
        watchman_daemon.kill()
        wait_for(lambda: reloader.polling, message="the reloader to fall back to polling")
        assert collect(reloader, first_s=0.5) == []  # polling starts from what is known
        stamp = path.stat().st_mtime_ns
        path.write_text("edited while polling\n")
        os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
        assert changes_of(collect(reloader, quiet_s=0.3)) == {path: "modified"}
    finally:
        watchman_daemon.start()
    wait_for(
        lambda: not reloader.polling and reloader.connections > connections,
        message="the reloader to return to Watchman",
    )
    added = write(root / "later.py")
    batches = collect(reloader)
    assert changes_of(batches) == {added: "added"}
    assert all(not b.reason for b in batches)  # back to Watchman cleanly: no spurious reload


def test_changes_deferred_while_git_holds_index_lock_come_once(
    start_watchman: StartWatchman, tmp_path: Path
) -> None:
    """defer_vcs: nothing while .git/index.lock exists, then one batch."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    files = [write(repo / f"m{i}.py") for i in range(20)]
    reloader = start_watchman(repo, debounce_ms=1, debounce_max_ms=5000)
    recorder = BatchRecorder(reloader)
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    for i, path in enumerate(files):
        path.write_text(f"v = {i}\n")
    assert stays(lambda: not recorder.batches, 0.5)  # Watchman holds them back
    received = reloader.results_received
    lock.unlink()
    batches = recorder.settle(quiet_s=1.0)
    assert [set(b.changes) for b in batches] == [set(files)]
    assert reloader.results_received == received + 1  # the daemon sends a deferred result once


def test_recrawl_warning_is_reported_once_with_the_fix(
    start_watchman: StartWatchman, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "proj"
    path = write(root / "app.py")
    reloader = start_watchman(root)
    [watch_root] = reloader.subscriptions
    client = pywatchman_client()
    try:
        client.query("debug-recrawl", watch_root)  # type: ignore[attr-defined]
    finally:
        client.close()  # type: ignore[attr-defined]
    for i in range(3):
        path.write_text(f"v = {i}\n")
        assert changes_of(collect(reloader, quiet_s=0.3)) == {path: "modified"}
    warnings = [r.getMessage() for r in caplog.records if "recrawl" in r.getMessage()]
    assert len(warnings) == 1
    assert "max_user_watches" in warnings[0] and "watchman watch-del-all" in warnings[0]


def test_poisoned_daemon_is_reported_once_and_polling_takes_over(
    start_watchman: StartWatchman,
    tmp_path: Path,
    watchman_daemon: WatchmanDaemon,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Watchman's "poisoned" state (inotify limit hit): one warning with the fix, then polling."""
    root = tmp_path / "proj"
    path = write(root / "app.py")
    reloader = start_watchman(root, fallback_after_s=0.3, poll_interval_s=0.1)
    [watch_root] = reloader.subscriptions
    client = pywatchman_client()
    try:
        try:
            client.query("debug-poison", watch_root)  # type: ignore[attr-defined]
        finally:
            client.close()  # type: ignore[attr-defined]
        reloader.watch_dir(tmp_path / "more", "**/*.py")  # the next request meets the poison
        wait_for(lambda: reloader.polling, message="the reloader to fall back to polling")
        assert collect(reloader, first_s=0.5) == []  # the switch itself reloads nothing
        stamp = path.stat().st_mtime_ns + 10**9
        path.write_text("edited while poisoned\n")
        os.utime(path, ns=(stamp, stamp))
        assert changes_of(collect(reloader, quiet_s=0.3)) == {path: "modified"}
        poisoned = [r.getMessage() for r in caplog.records if "inotify watches" in r.getMessage()]
        assert len(poisoned) == 1
        assert "max_user_watches" in poisoned[0] and "watchman shutdown-server" in poisoned[0]
    finally:
        watchman_daemon.kill()  # a poisoned daemon stays poisoned: give later tests a fresh one
        watchman_daemon.start()


def test_watched_root_deleted_and_recreated(start_watchman: StartWatchman, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "proj"
    write(root / "app.py")
    reloader = start_watchman(root)
    shutil.rmtree(root)
    batches = collect(reloader, quiet_s=0.5)
    assert [b.reason for b in batches if b.reason] == [
        f"Watchman stopped watching {root.resolve()} (was it deleted?)"
    ]
    created = write(root / "again.py")
    wait_for(
        lambda: created in changes_of(collect(reloader, quiet_s=0.3, first_s=0.5)),
        message="the recreated root's file to be reported",
    )


def test_each_result_is_handled_once(start_watchman: StartWatchman, tmp_path: Path) -> None:
    """pywatchman returns a subscription PDU and buffers it too: it must be handled once."""
    root = tmp_path / "proj"
    paths = [write(root / f"m{i}.py") for i in range(3)]
    reloader = start_watchman(root)
    for i, path in enumerate(paths):
        received = reloader.results_received
        path.write_text(f"v = {i}\n")
        assert changes_of(collect(reloader, quiet_s=0.5)) == {path: "modified"}
        assert reloader.results_received == received + 1
