"""Git hooks that declare a Watchman state, and branch switches that give exactly one batch."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import BatchRecorder, StartWatchman, collect, wait_for
from watchreload.errors import GitHookError
from watchreload.vcs import (
    CHAINED_SUFFIX,
    PIDFILE_NAME,
    install_git_hooks,
    uninstall_git_hooks,
)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "watchreload tests",
    "GIT_AUTHOR_EMAIL": "tests@watchreload.invalid",
    "GIT_COMMITTER_NAME": "watchreload tests",
    "GIT_COMMITTER_EMAIL": "tests@watchreload.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, f"git {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README").write_text("repo\n")
    git(path, "add", "README")
    git(path, "commit", "-qm", "initial")
    return path


def diverge_and_checkout_feature(repo: Path) -> None:
    """A 'feature' branch and 'main' with one commit each since they split; 'feature' is out."""
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "f.py").write_text("x = 1\n")
    git(repo, "add", "f.py")
    git(repo, "commit", "-qm", "f")
    git(repo, "checkout", "-q", "main")
    (repo / "g.py").write_text("y = 1\n")
    git(repo, "add", "g.py")
    git(repo, "commit", "-qm", "g")
    git(repo, "checkout", "-q", "feature")


def write_tree(repo: Path, count: int, text: str) -> None:
    for i in range(count):
        path = repo / "pkg" / f"d{i % 40}" / f"m{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE = {text!r}  # {i}\n")


def test_install_chains_existing_hooks_and_is_idempotent(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    hooks = repo / ".git" / "hooks"
    log = tmp_path / "previous-hook.log"
    previous = hooks / "post-checkout"
    previous.write_text(f'#!/bin/sh\necho "previous $*" >> {log}\n')
    previous.chmod(0o755)

    written = install_git_hooks(repo)
    assert {p.name for p in written} == {
        "pre-rebase",
        "post-checkout",
        "post-merge",
        "post-rewrite",
    }
    assert (hooks / ("post-checkout" + CHAINED_SUFFIX)).read_text().startswith("#!/bin/sh\necho")
    assert install_git_hooks(repo) == written  # again: ours rewritten, the chained one kept

    git(repo, "checkout", "-q", "-b", "other")
    assert log.read_text().startswith("previous ")  # the previous hook still runs, with its args

    uninstall_git_hooks(repo)
    assert previous.read_text().startswith("#!/bin/sh\necho")
    assert not (hooks / "pre-rebase").exists()


def test_a_failing_chained_pre_rebase_still_stops_the_rebase(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    refuse = repo / ".git" / "hooks" / "pre-rebase"
    refuse.write_text("#!/bin/sh\nexit 1\n")
    refuse.chmod(0o755)
    install_git_hooks(repo)
    diverge_and_checkout_feature(repo)
    result = subprocess.run(["git", "rebase", "main"], cwd=repo, capture_output=True, check=False)
    assert result.returncode != 0
    assert b"pre-rebase hook refused" in result.stderr


def test_install_outside_a_repository_says_so(tmp_path: Path) -> None:
    with pytest.raises(GitHookError, match="not a git working tree"):
        install_git_hooks(tmp_path)
    with pytest.raises(GitHookError, match="is not a directory"):
        install_git_hooks(tmp_path / "missing")


@pytest.mark.watchman
def test_checkout_of_thousands_of_files_gives_one_batch(
    start_watchman: StartWatchman, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    install_git_hooks(repo)
    write_tree(repo, 2500, "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "main tree")
    git(repo, "checkout", "-q", "-b", "feature")
    write_tree(repo, 2500, "feature")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "feature tree")
    git(repo, "checkout", "-q", "main")
    # A 5 ms debounce: still one batch, because Watchman defers while git holds index.lock
    # (defer_vcs) and sends the whole checkout at once.
    reloader = start_watchman(repo, debounce_ms=5, debounce_max_ms=5000)

    recorder = BatchRecorder(reloader)
    git(repo, "checkout", "-q", "feature")
    batches = recorder.settle()
    assert [len(b) for b in batches] == [2500]


@pytest.mark.watchman
def test_rebase_is_bracketed_by_the_state(start_watchman: StartWatchman, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    install_git_hooks(repo)
    git(repo, "checkout", "-q", "-b", "feature")
    for step in range(6):  # six picks, each rewriting 400 files
        write_tree(repo, 400, f"feature {step}")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"feature {step}")
    git(repo, "checkout", "-q", "main")
    (repo / "other.txt").write_text("main moves on\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-qm", "main moves on")
    git(repo, "checkout", "-q", "feature")
    reloader = start_watchman(repo, debounce_ms=20, debounce_max_ms=50)
    seen_paused: list[bool] = []
    reloader.batcher.pause = _spy(reloader.batcher.pause, seen_paused)  # type: ignore[method-assign]

    # --exec pauses between picks (as a test command would): without the state each pick's
    # writes reach the reloader on their own and give a batch each.
    recorder = BatchRecorder(reloader)
    git(repo, "rebase", "-q", "--exec", "sleep 0.3", "main")
    batches = recorder.settle()
    assert seen_paused, "the rebase never entered the Watchman state"
    assert len(batches) == 1
    assert len(batches[0]) == 400
    assert not reloader.batcher.paused
    wait_for(lambda: not (repo / ".git" / PIDFILE_NAME).exists(), message="the holder to exit")


@pytest.mark.watchman
def test_holder_leaves_when_git_stops_on_a_conflict(
    start_watchman: StartWatchman, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    install_git_hooks(repo)
    (repo / "c.py").write_text("base = 0\n")
    git(repo, "add", "c.py")
    git(repo, "commit", "-qm", "base")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "c.py").write_text("feature = 1\n")
    git(repo, "commit", "-qam", "feature")
    git(repo, "checkout", "-q", "main")
    (repo / "c.py").write_text("main = 1\n")
    git(repo, "commit", "-qam", "main")
    git(repo, "checkout", "-q", "feature")
    reloader = start_watchman(repo)

    result = subprocess.run(["git", "rebase", "main"], cwd=repo, capture_output=True, check=False)
    assert result.returncode != 0  # stopped on the conflict
    wait_for(lambda: not reloader.batcher.paused, message="the state to end with git")
    collect(reloader, quiet_s=0.5)
    (repo / "c.py").write_text("resolved = 1\n")  # editing while resolving still reloads
    batches = collect(reloader)
    assert [set(b.changes) for b in batches] == [{repo / "c.py"}]
    subprocess.run(["git", "rebase", "--abort"], cwd=repo, capture_output=True, check=False)


def _spy(method: Callable[[], None], calls: list[bool]) -> Callable[[], None]:
    def wrapper() -> None:
        calls.append(True)
        method()

    return wrapper


def test_hooks_never_start_a_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no reachable daemon the hooks do nothing and git goes on."""
    monkeypatch.setenv("WATCHMAN_SOCK", str(tmp_path / "nobody-home.sock"))
    repo = make_repo(tmp_path / "repo")
    install_git_hooks(repo)
    diverge_and_checkout_feature(repo)
    git(repo, "rebase", "-q", "main")
    assert (repo / "g.py").exists()  # the rebase happened
    assert not (repo / ".git" / PIDFILE_NAME).exists()
    assert os.environ["WATCHMAN_SOCK"].endswith("nobody-home.sock")
