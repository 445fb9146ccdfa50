"""The project's git ignore rules in command mode, on every backend: the real CLI, a real child,
a real git work tree; plus the daemon's answer to the subscription against WatchSpec.matches()."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.programs.harness import Watchreload, interrupt_at_teardown
from tests.support import Spawned, StartWatchman, wait_for

Spawn = Callable[..., Spawned]

RULES = "build/\ndist/\n/gen\n*_pb2.py\n"


@pytest.fixture
def spawn(spawn: Spawn) -> Iterator[Spawn]:
    yield from interrupt_at_teardown(spawn)


def write(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def git_init(root: Path) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True, capture_output=True, timeout=30)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree with a .gitignore, an info/exclude and some generated files already there."""
    root = tmp_path / "repo"
    git_init(root)
    write(root / ".gitignore", RULES)
    write(root / ".git" / "info" / "exclude", "scratch/\n")
    for name in ("app.py", "pkg/mod.py", "build/lib/pkg/mod.py", "gen/api.py", "api_pb2.py"):
        write(root / name)
    return root


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def stop(run: Watchreload) -> None:
    assert run.stop(signal.SIGINT) == 128 + signal.SIGTERM, run.output


def restarts_for(run: Watchreload, path: Path, starts: int) -> None:
    """Write `path` and wait for restart number `starts` (a positive control)."""
    write(path, f"n = {starts}\n")
    run.wait_starts(starts)


def test_generated_files_that_git_ignores_do_not_restart(
    spawn: Spawn, repo: Path, state: Path, backend: str
) -> None:
    run = Watchreload(spawn, repo, state, backend=backend)
    restarts_for(run, repo / "app.py", 2)

    write(repo / "build" / "lib" / "pkg" / "mod.py", "generated = True\n")
    write(repo / "build" / "lib" / "new" / "deeper" / "x.py")
    write(repo / "dist" / "pkg-1.0" / "setup.py")
    write(repo / "gen" / "api.py", "regenerated = True\n")
    write(repo / "api_pb2.py", "regenerated = True\n")  # a file-level rule
    write(repo / "pkg" / "service_pb2.py")
    write(repo / "scratch" / "try.py")  # .git/info/exclude
    run.stays_at(2, duration_s=1.0)

    write(repo / "pkg" / "gen" / "api.py")  # `/gen` is anchored: this one is watched
    records = run.wait_starts(3)
    assert "pkg/gen/api.py" in str(records[2]["changes"])
    stop(run)


def test_a_negation_re_includes(spawn: Spawn, repo: Path, state: Path, backend: str) -> None:
    write(repo / "pkg" / ".gitignore", "!wanted_pb2.py\n")
    run = Watchreload(spawn, repo, state, backend=backend)
    write(repo / "pkg" / "other_pb2.py")
    run.stays_at(1, duration_s=1.0)
    restarts_for(run, repo / "pkg" / "wanted_pb2.py", 2)
    run.stays_at(2)
    stop(run)


def test_gitignore_edits_take_effect_without_a_restart(
    spawn: Spawn, repo: Path, state: Path, backend: str
) -> None:
    run = Watchreload(spawn, repo, state, backend=backend)
    restarts_for(run, repo / "tools" / "stamp.py", 2)

    # Ignore tools/ and watch gen/ from now on; the edit itself restarts nothing.
    write(repo / ".gitignore", RULES.replace("/gen\n", "") + "tools/\n")
    wait_for(lambda: "git ignore rules changed" in run.output, message="the new rules to apply")
    run.stays_at(2)
    write(repo / "tools" / "stamp.py", "n = 3\n")
    run.stays_at(2)
    restarts_for(run, repo / "gen" / "api.py", 3)

    # A .gitignore created deeper down applies as well.
    write(repo / "pkg" / ".gitignore", "local_*.py\n")
    wait_for(lambda: run.output.count("git ignore rules changed") >= 2, message="the rules")
    write(repo / "pkg" / "local_settings.py")
    run.stays_at(3)
    restarts_for(run, repo / "pkg" / "mod.py", 4)
    stop(run)


def test_no_gitignore_watches_what_git_ignores(
    spawn: Spawn, repo: Path, state: Path, backend: str
) -> None:
    run = Watchreload(spawn, repo, state, backend=backend, options=["--no-gitignore"])
    restarts_for(run, repo / "build" / "lib" / "pkg" / "mod.py", 2)
    restarts_for(run, repo / "api_pb2.py", 3)
    write(repo / ".gitignore", RULES + "*.py\n")  # not watched: it is no .py file
    run.stays_at(3)
    restarts_for(run, repo / "app.py", 4)
    stop(run)


def test_the_setting_turns_it_off_from_the_environment(
    spawn: Spawn, repo: Path, state: Path
) -> None:
    from tests.programs.harness import clean_environ

    env = clean_environ(WATCHRELOAD_GITIGNORE="0")
    run = Watchreload(spawn, repo, state, env=env)
    restarts_for(run, repo / "gen" / "api.py", 2)
    stop(run)


def test_outside_a_git_work_tree_a_gitignore_means_nothing(
    spawn: Spawn, tmp_path: Path, state: Path, backend: str
) -> None:
    plain = tmp_path / "plain"
    write(plain / ".gitignore", RULES)
    write(plain / "app.py")
    run = Watchreload(spawn, plain, state, backend=backend)
    restarts_for(run, plain / "build" / "lib" / "mod.py", 2)
    stop(run)


# -- the daemon's answer is the client's answer ---------------------------------------------------

TREE = [
    "app.py",
    "pkg/mod.py",
    "pkg/api_pb2.py",
    "pkg/wanted_pb2.py",
    "build/lib/pkg/mod.py",
    "pkg/build/x.py",
    "dist/setup.py",
    "gen/api.py",
    "pkg/gen/api.py",
    "scratch/try.py",
    "docs/conf.py",
    "docs/notes.txt",
]


@pytest.mark.watchman
@pytest.mark.parametrize("negation", [False, True], ids=["translated", "client-only"])
def test_daemon_terms_select_what_the_client_filter_keeps(
    start_watchman: StartWatchman, repo: Path, negation: bool
) -> None:
    import pywatchman

    for name in TREE:
        write(repo / name)
    if negation:
        write(repo / "pkg" / ".gitignore", "!wanted_pb2.py\n")
    reloader = start_watchman(repo)
    [(watch_root, sub)] = reloader.subscriptions.items()
    terms = str(sub.query["expression"])
    assert ("**/build/**" in terms) is not negation  # a `!` keeps the rules out of the daemon
    client = pywatchman.client(timeout=10)
    try:
        result = client.query("query", watch_root, dict(sub.query, fields=["name"]))
    finally:
        client.close()
    spec = reloader.spec()
    everything = {p for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    kept = {p for p in everything if spec.matches(p)}  # what the funnel lets through
    got = {sub.plan.path_for(name) for name in result["files"]}
    if not negation:
        assert got == kept  # the terms are the rules exactly
    assert {p for p in got if spec.matches(p)} == kept  # the daemon never drops a kept file
    expected = {repo / n for n in ("app.py", "pkg/mod.py", "pkg/gen/api.py", "docs/conf.py")}
    if negation:
        expected.add(repo / "pkg" / "wanted_pb2.py")
    assert {p for p in kept if p.suffix == ".py"} == expected


# -- the funnel: what every backend's changes pass ------------------------------------------------


def test_the_funnel_drops_git_ignored_changes_but_never_files_watched_by_name(repo: Path) -> None:
    from watchreload.changes import Change
    from watchreload.reloaders.stat import StatReloader

    reloader = StatReloader(watch_modules=False, debounce_ms=0)
    reloader.watch_dir(repo, "**/*.py")
    imported = repo / "build" / "lib" / "pkg" / "mod.py"  # a module imported from a build tree
    reloader.extra_files.add(imported)
    generated = [repo / "build" / "lib" / "other.py", repo / "api_pb2.py", repo / "gen" / "api.py"]
    reloader.notify_files_changed(
        [(p, Change.modified) for p in (*generated, imported, repo / "app.py")]
    )
    batch = reloader.wait_for_changes(5)
    assert batch is not None
    assert set(batch.changes) == {imported, repo / "app.py"}

    # An edit of the rules is not a change of the program: it refreshes the rules.
    write(repo / ".gitignore", "build/\n")
    reloader.notify_files_changed(
        [(repo / ".gitignore", Change.modified), (repo / "gen" / "api.py", Change.modified)]
    )
    batch = reloader.wait_for_changes(5)
    assert batch is not None and set(batch.changes) == {repo / "gen" / "api.py"}
    reloader.stop()


def test_library_mode_reads_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from watchreload.reloaders import get_reloader

    monkeypatch.chdir(tmp_path)  # no pyproject.toml above
    monkeypatch.delenv("WATCHRELOAD_GITIGNORE", raising=False)
    assert get_reloader("stat").gitignore_rules is not None  # on by default, as for the CLI
    monkeypatch.setenv("WATCHRELOAD_GITIGNORE", "false")
    assert get_reloader("stat").gitignore_rules is None
    assert get_reloader("stat", gitignore=True).gitignore_rules is not None  # an argument wins


def test_a_watched_directory_that_git_ignores_still_restarts(
    spawn: Spawn, repo: Path, state: Path, backend: str
) -> None:
    """Watching a directory inside one the repository ignores (here `build/`) is an explicit
    choice: its edits restart, and only the ignore files inside it apply."""
    root = repo / "build" / "work"
    write(root / "app.py")
    write(root / ".gitignore", "*.tmp.py\n")
    run = Watchreload(spawn, root, state, backend=backend)
    restarts_for(run, root / "app.py", 2)
    write(root / "scratch.tmp.py")  # the directory's own rule
    run.stays_at(2, duration_s=1.0)
    restarts_for(run, root / "pkg" / "new.py", 3)
    assert "is ignored by git" in run.output
    stop(run)
