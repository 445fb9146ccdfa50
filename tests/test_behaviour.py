"""Command mode end to end, on every backend: the real CLI, a real child, a temporary tree.

Each test starts `python -m watchreload` over tests/programs/child.py, changes the tree the way an
editor, a checkout or a build does, and counts the child's starts. The same tests run against the
stat and the Watchman backend (the `backend` fixture).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.programs.harness import Watchreload, interrupt_at_teardown
from tests.support import Spawned, without_file_privileges

Spawn = Callable[..., Spawned]


@pytest.fixture
def spawn(spawn: Spawn) -> Iterator[Spawn]:
    """The conftest `spawn`, plus a SIGINT at teardown to whatever a failed test left running."""
    yield from interrupt_at_teardown(spawn)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "pkg").mkdir(parents=True)
    (root / "app.py").write_text("print('app')\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text("VALUE = 1\n")
    for ignored in ("node_modules", ".git", "__pycache__", "pkg/__pycache__", ".venv/lib"):
        (root / ignored).mkdir(parents=True)
    return root


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"  # outside the watched tree


def changed_paths(record: dict[str, object], state: Path) -> list[str]:
    """Every path the child was told about (the overflow file when the list was truncated)."""
    if record["changes_file"]:
        full = state / f"starts.jsonl.{record['pid']}.json"
        paths: list[str] = json.loads(full.read_text())
    else:
        paths = json.loads(str(record["changes"]))
    return [os.path.realpath(p) for p in paths]


def stop(run: Watchreload) -> None:
    assert run.stop(signal.SIGINT) == 128 + signal.SIGTERM, run.output


def test_in_place_edit_restarts_once(spawn: Spawn, tree: Path, state: Path, backend: str) -> None:
    run = Watchreload(spawn, tree, state, backend=backend)
    with open(tree / "app.py", "a") as f:
        f.write("print('edited')\n")
    records = run.wait_starts(2)
    run.stays_at(2)
    assert changed_paths(records[1], state) == [os.path.realpath(tree / "app.py")]
    assert "app.py modified" in run.output
    stop(run)


def test_atomic_rename_save(spawn: Spawn, tree: Path, state: Path, backend: str) -> None:
    run = Watchreload(spawn, tree, state, backend=backend)
    temporary = tree / "pkg" / "mod.py.tmp-save"  # not matched by **/*.py
    temporary.write_text("VALUE = 2\n")
    os.replace(temporary, tree / "pkg" / "mod.py")
    run.wait_starts(2)
    run.stays_at(2)
    stop(run)


def test_delete_and_recreate(spawn: Spawn, tree: Path, state: Path, backend: str) -> None:
    run = Watchreload(spawn, tree, state, backend=backend)
    (tree / "pkg" / "mod.py").unlink()
    run.wait_starts(2)
    (tree / "pkg" / "mod.py").write_text("VALUE = 1\n")
    run.wait_starts(3)
    run.stays_at(3)
    stop(run)


def test_mtime_set_backwards(spawn: Spawn, tree: Path, state: Path, backend: str) -> None:
    run = Watchreload(spawn, tree, state, backend=backend)
    path = tree / "app.py"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))  # a checkout of old code
    run.wait_starts(2)
    run.stays_at(2)
    stop(run)


def test_new_file_in_new_directory(spawn: Spawn, tree: Path, state: Path, backend: str) -> None:
    run = Watchreload(spawn, tree, state, backend=backend)
    (tree / "new" / "deeper").mkdir(parents=True)
    (tree / "new" / "deeper" / "views.py").write_text("VIEWS = []\n")
    records = run.wait_starts(2)
    assert changed_paths(records[1], state) == [
        os.path.realpath(tree / "new" / "deeper" / "views.py")
    ]
    stop(run)


def test_writes_under_ignored_directories_do_not_restart(
    spawn: Spawn, tree: Path, state: Path, backend: str
) -> None:
    run = Watchreload(spawn, tree, state, backend=backend)
    (tree / "app.py").write_text("print('positive control: the watcher is live')\n")
    run.wait_starts(2)

    (tree / "node_modules" / "x.py").write_text("")
    (tree / "node_modules" / "pkg" / "deep").mkdir(parents=True)
    (tree / "node_modules" / "pkg" / "deep" / "y.py").write_text("")
    (tree / ".git" / "hook.py").write_text("")
    (tree / "__pycache__" / "app.py").write_text("")
    (tree / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (tree / ".venv" / "lib" / "site.py").write_text("")
    (tree / "pkg" / ".mod.py.swp").write_text("")
    (tree / "README.txt").write_text("not a .py file\n")
    run.stays_at(2, duration_s=1.0)

    (tree / "pkg" / "mod.py").write_text("VALUE = 'still watching'\n")
    run.wait_starts(3)
    stop(run)


def test_burst_of_1000_files_restarts_once(
    spawn: Spawn, tree: Path, state: Path, backend: str
) -> None:
    # The quiet period is longer than the stat backend's poll interval, so that a burst caught
    # by two scans is still one batch.
    options = ["--debounce", "400", "--debounce-max", "10000"]
    run = Watchreload(spawn, tree, state, backend=backend, options=options)
    generated = tree / "generated"
    generated.mkdir()
    for i in range(1000):
        (generated / f"module_{i:04d}.py").write_text(f"N = {i}\n")
    records = run.wait_starts(2)
    run.stays_at(2, duration_s=1.0)
    assert len(changed_paths(records[1], state)) == 1000
    assert "1,000 files changed" in run.output
    stop(run)


def test_changed_paths_reach_the_child(spawn: Spawn, tree: Path, state: Path, backend: str) -> None:
    run = Watchreload(spawn, tree, state, backend=backend, options=["--debounce", "400"])
    assert run.records()[0]["changes"] is None  # the first start was not caused by a change
    (tree / "app.py").write_text("print(1)\n")
    (tree / "pkg" / "mod.py").write_text("VALUE = 3\n")
    records = run.wait_starts(2)
    assert sorted(changed_paths(records[1], state)) == sorted(
        os.path.realpath(p) for p in (tree / "app.py", tree / "pkg" / "mod.py")
    )
    assert records[1]["changes_file"] is None
    stop(run)


def test_unreadable_directory_warns_once_and_the_rest_is_watched(
    spawn: Spawn, tree: Path, state: Path, backend: str
) -> None:
    locked = tree / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        # Under root, watchreload runs without the capabilities that bypass permission bits.
        run = Watchreload(spawn, tree, state, backend=backend, wrapper=without_file_privileges([]))
        (tree / "app.py").write_text("print('still watched')\n")
        run.wait_starts(2)
        (tree / "pkg" / "mod.py").write_text("VALUE = 2\n")
        run.wait_starts(3)
        warnings = run.output.count("cannot read")
        assert warnings <= 1, run.output  # once, not once per scan
        if backend == "stat":
            assert warnings == 1 and f"cannot read {locked}" in run.output, run.output
        stop(run)
    finally:
        locked.chmod(0o755)
