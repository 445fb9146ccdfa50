"""Globs (wildmatch), ignore patterns and WatchSpec (watchreload.spec)."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchreload.errors import ConfigError
from watchreload.spec import (
    DEFAULT_IGNORE_PATTERNS,
    GlobToken,
    IgnoreMatcher,
    WatchSpec,
    compile_glob,
    glob_matches,
    tokenize_glob,
)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**/*.py", "app.py", True),
        ("**/*.py", "pkg/sub/mod.py", True),
        ("**/*.py", "pkg/mod.pyc", False),
        ("*.py", "app.py", True),
        ("*.py", "pkg/app.py", False),  # '*' does not cross '/'
        ("pkg/*.py", "pkg/app.py", True),
        ("pkg/*.py", "pkg/sub/app.py", False),
        ("pkg/**", "pkg/sub/app.txt", True),
        ("pkg/**/*.html", "pkg/t.html", True),
        ("pkg/**/*.html", "pkg/a/b/t.html", True),
        ("pkg/**/*.html", "other/t.html", False),
        ("**/.env", ".env", True),  # dot files match like any name
        ("*", ".hidden", True),
        ("?.py", "a.py", True),
        ("?.py", "ab.py", False),
        ("?", "/", False),
        ("[ab].py", "a.py", True),
        ("[ab].py", "c.py", False),
        ("[!ab].py", "c.py", True),
        ("[!ab].py", "a.py", False),
        ("[a-c]x", "bx", True),
        ("\\*.py", "*.py", True),
        ("\\*.py", "a.py", False),
        ("a**b", "axxb", True),  # '**' not next to '/' behaves like '*'
        ("a**b", "ax/xb", False),
    ],
)
def test_glob_follows_wildmatch(pattern: str, path: str, expected: bool) -> None:
    assert glob_matches(pattern, path) is expected


@pytest.mark.parametrize("pattern", ["", "/abs/*.py", "[abc", "trailing\\"])
def test_invalid_glob_is_a_clear_config_error(pattern: str) -> None:
    with pytest.raises(ConfigError, match="glob"):
        glob_matches(pattern, "x.py")


@pytest.mark.parametrize(
    ("relative", "ignored"),
    [
        ("app.py", False),
        ("pkg/mod.py", False),
        ("node_modules/lib/index.py", True),
        ("deep/down/node_modules/x.py", True),
        (".git/hooks/pre-commit.py", True),
        ("pkg/__pycache__/mod.cpython-311.py", True),
        ("pkg/mod.pyc", True),
        (".venv/lib/site.py", True),
        ("venv/lib/site.py", True),
        (".tox/py/x.py", True),
        ("pkg/.mod.py.swp", True),
        ("pkg/mod.py~", True),
        ("pkg/.#mod.py", True),
        ("pkg/#mod.py#", True),
        ("pkg/4913", True),  # vim's write-permission probe
        ("my_venv_tools/x.py", False),  # only whole names match
    ],
)
def test_default_ignores(relative: str, ignored: bool) -> None:
    assert IgnoreMatcher(DEFAULT_IGNORE_PATTERNS).ignores_path(relative) is ignored


def test_path_patterns_match_the_whole_relative_path() -> None:
    matcher = IgnoreMatcher(("docs/_build/**", "*.log"))
    assert matcher.ignores_path("docs/_build/html/x.py")
    assert not matcher.ignores_path("src/docs/_build/x.py")
    assert matcher.ignores_path("a/b/run.log")


def test_default_ignores_can_be_turned_off() -> None:
    assert not IgnoreMatcher(()).ignores_path("node_modules/x.py")


def test_tokens_say_which_double_stars_are_whole_segments() -> None:
    assert [t.kind for t in tokenize_glob("**/a**b/**")] == [
        "globstar_dir",
        "literal",
        "star",
        "literal",
        "literal",
        "globstar_end",
    ]
    assert [t.text for t in tokenize_glob("**/a**b/**")] == ["**/", "a", "**", "b", "/", "**"]


def test_tokens_keep_their_pattern_text() -> None:
    pattern = "[!a-c]?\\*[]x]*.py"
    tokens = tokenize_glob(pattern)
    assert "".join(t.text for t in tokens) == pattern
    assert tokens[0] == GlobToken("class", "[!a-c]", "a-c", negate=True)
    assert tokens[1] == GlobToken("any", "?")
    assert tokens[2] == GlobToken("literal", "\\*", "*")
    assert tokens[3] == GlobToken("class", "[]x]", "]x")


@pytest.mark.parametrize("pattern", ["[abc", "trailing\\"])
def test_the_tokenizer_rejects_what_compile_glob_rejects(pattern: str) -> None:
    with pytest.raises(ConfigError, match="glob"):
        tokenize_glob(pattern)
    with pytest.raises(ConfigError, match="glob"):
        compile_glob(pattern)


def test_git_ignore_rules_win_over_globs_and_extra_files_win_over_rules(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".gitignore").write_text("build/\n*_pb2.py\n")
    generated, imported = repo / "build" / "lib" / "app.py", repo / "build" / "mod.py"
    spec = WatchSpec.build([repo], extra_files=[imported])
    assert spec.matches(repo / "app.py")
    assert not spec.matches(generated)
    assert not spec.matches(repo / "api_pb2.py")
    assert spec.matches(imported)  # watched by name: wins over every rule
    assert spec.matches(repo / ".gitignore")  # the rules are watched whatever the globs
    assert not spec.matches(repo / "build" / ".gitignore")  # git does not read it
    off = WatchSpec.build([repo], gitignore=False)
    assert off.matches(generated) and off.matches(repo / "api_pb2.py")
    assert not off.matches(repo / ".gitignore")
    assert off == WatchSpec.build([repo], gitignore=True)  # the rules are a cache, not the spec


def test_outside_a_git_work_tree_the_rules_change_nothing(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / ".gitignore").write_text("*.py\n")
    assert WatchSpec.build([plain]).matches(plain / "app.py")
