"""GitIgnoreRules against git itself: `git check-ignore` is the oracle for every path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from watchreload.gitignore import GitIgnoreRules

RULES = {
    ".gitignore": "build/\n*.log\n!keep.log\n/gen\ndocs/_build\n*.egg-info/\nsecret_*.py\n",
    "src/.gitignore": "generated/\n!secret_ok.py\nlocal.py\n",
    "src/deep/.gitignore": "*.py\n!wanted.py\n",
    "build/.gitignore": "!keep.py\n",
}
EXCLUDE = "scratch/\n"
PATHS = [
    "app.py",
    "build/lib/app.py",
    "build/keep.py",
    "src/build/x.py",
    "x.log",
    "src/keep.log",
    "gen/api.py",
    "src/gen/api.py",
    "docs/_build/index.py",
    "src/docs/_build/index.py",
    "pkg.egg-info/PKG.py",
    "secret_key.py",
    "src/secret_ok.py",
    "src/secret_no.py",
    "src/generated/models.py",
    "src/local.py",
    "local.py",
    "src/deep/a.py",
    "src/deep/wanted.py",
    "src/deep/sub/b.py",
    "src/deep/sub/wanted.py",
    "scratch/try.py",
    "src/scratch/try.py",
]


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    assert git(root, "init", "-q").returncode == 0
    for name, text in RULES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text(EXCLUDE)
    for name in PATHS:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x = 1\n")
    return root


def git_ignored(repo: Path, paths: list[str]) -> set[str]:
    result = subprocess.run(
        ["git", "-C", str(repo), "check-ignore", "--no-index", "--stdin"],
        input="\n".join(paths) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return set(result.stdout.split())


def ours(repo: Path, paths: list[str]) -> set[str]:
    rules = GitIgnoreRules()
    return {p for p in paths if rules.ignores(repo / p)}


def test_every_path_agrees_with_git_check_ignore(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    expected = git_ignored(repo, PATHS)
    assert expected, "the oracle found nothing ignored: the fixture is wrong"
    assert ours(repo, PATHS) == expected


def test_directories_agree_with_git(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    directories = sorted({str(Path(p).parent) for p in PATHS if "/" in p})
    expected = {d.rstrip("/") for d in git_ignored(repo, [d + "/" for d in directories])}
    rules = GitIgnoreRules()
    assert {d for d in directories if rules.ignores(repo / d, is_dir=True)} == expected


def test_outside_a_git_work_tree_nothing_is_ignored(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".gitignore").write_text("*.py\n")
    assert not GitIgnoreRules().ignores(plain / "app.py")


def test_a_gitdir_file_work_tree_reads_its_exclude_file(tmp_path: Path) -> None:
    main = make_repo(tmp_path / "main")
    git(
        main,
        "-c",
        "user.email=t@t.invalid",
        "-c",
        "user.name=t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    linked = tmp_path / "linked"
    assert git(main, "worktree", "add", "-q", str(linked)).returncode == 0
    assert (linked / ".git").is_file()
    (linked / "scratch").mkdir()
    # Linked work trees share the main repository's info/exclude (git's common directory).
    expected = git_ignored(linked, ["scratch/try.py", "app.py"])
    assert ours(linked, ["scratch/try.py", "app.py"]) == expected


@pytest.mark.parametrize("edit", ["write", "create", "remove"])
def test_refresh_applies_edited_rules(tmp_path: Path, edit: str) -> None:
    repo = make_repo(tmp_path / "repo")
    rules = GitIgnoreRules()
    target = repo / "src" / "tools" / "gen.py"
    target.parent.mkdir(parents=True)
    nested = target.parent / ".gitignore"
    if edit == "remove":
        nested.write_text("gen.py\n")
    assert rules.ignores(target) is (edit == "remove")
    assert not rules.refresh()
    if edit == "remove":
        nested.unlink()
    else:
        if edit == "write":
            (repo / ".gitignore").write_text(RULES[".gitignore"] + "gen.py\n")
        else:
            nested.write_text("gen.py\n")
        os.utime(nested.parent, None)
    assert rules.refresh()
    assert rules.ignores(target) is (edit != "remove")
    assert rules.ignores(target) is bool(git_ignored(repo, ["src/tools/gen.py"]))


def test_outer_ignore_files_are_those_above_a_directory_and_info_exclude(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    rules = GitIgnoreRules()
    assert rules.outer_ignore_files(repo / "src" / "deep") == [
        repo / "src" / ".gitignore",
        repo / ".gitignore",
        repo / ".git" / "info" / "exclude",
    ]
    assert rules.outer_ignore_files(repo) == [repo / ".git" / "info" / "exclude"]
    assert rules.outer_ignore_files(tmp_path) == []


def test_generation_counts_refreshes_that_changed_rules(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    rules = GitIgnoreRules()
    assert rules.ignores(repo / "x.log")
    assert rules.generation == 0 and not rules.refresh()
    (repo / ".gitignore").write_text("build/\n")
    assert rules.refresh() and rules.generation == 1
    assert not rules.ignores(repo / "x.log")
    assert rules.is_ignore_file(repo / ".git" / "info" / "exclude")
    assert rules.is_ignore_file(repo / "src" / ".gitignore")
    assert not rules.is_ignore_file(repo / "app.py")


def test_refresh_reads_a_new_ignore_file_a_watcher_saw(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    rules = GitIgnoreRules()
    fresh = repo / "fresh"
    fresh.mkdir()
    assert not rules.refresh([fresh / ".gitignore"])  # not there yet: nothing changed
    (fresh / ".gitignore").write_text("*.tmp\n")
    assert rules.refresh([fresh / ".gitignore"])
    assert rules.ignores(fresh / "x.tmp")
    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / ".gitignore").write_text("*.tmp\n")
    assert not rules.refresh([outside / ".gitignore"])  # no work tree: no rules


def test_a_watched_root_that_git_ignores_is_watched_with_its_own_rules(tmp_path: Path) -> None:
    """A root inside a directory that the enclosing repository ignores (a scratch copy, a
    benchmark's work tree) is not silently dropped: only the ignore files inside it apply."""
    repo = make_repo(tmp_path / "repo")
    root = repo / "build" / "work"  # `build/` is ignored by the repository's .gitignore
    (root / "sub").mkdir(parents=True)
    (root / ".gitignore").write_text("*.tmp\n")
    rules = GitIgnoreRules()
    assert rules.ignores(root / "app.py")  # as git sees it
    rules.watch_root(root)
    assert not rules.ignores(root / "app.py")
    assert not rules.ignores(root / "sub", is_dir=True)
    assert not rules.ignores(root / "x.log")  # the repository's `*.log` no longer applies
    assert rules.ignores(root / "scratch.tmp")  # the root's own rules do
    assert rules.work_tree(root / "sub") == root
    # A subscription from higher up (the root and a module elsewhere in the repository share
    # one) cannot take the repository's rules into the daemon: they would exclude the root.
    assert rules.rules_in_play(repo, []) is None
    rules.watch_root(repo / "src")  # not ignored by git: nothing changes
    assert rules.ignores(repo / "src" / "local.py")
