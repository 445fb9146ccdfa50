from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import without_file_privileges
from watchreload.errors import ConfigError
from watchreload.scan import scan_files
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


def _make_tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


TREE = [
    "app.py",
    "pkg/__init__.py",
    "pkg/sub/mod.py",
    "pkg/templates/page.html",
    "pkg/data.json",
    "node_modules/lib/index.js",
    "node_modules/lib/setup.py",
    ".git/config",
    ".venv/lib/site.py",
    "pkg/__pycache__/mod.cpython-311.pyc",
    "pkg/.mod.py.swp",
    ".hidden/conf.py",
    "docs/_build/gen.py",
]


@pytest.mark.parametrize("globs", [("**/*.py",), ("**/*.py", "**/*.html"), ("pkg/**",), ("*.py",)])
def test_scan_and_spec_give_the_same_answer(tmp_path: Path, globs: tuple[str, ...]) -> None:
    _make_tree(tmp_path, TREE)
    spec = WatchSpec.build([tmp_path], globs, (*DEFAULT_IGNORE_PATTERNS, "docs/_build/**"))
    scanned = set(map(Path, scan_files(tmp_path, globs, spec.ignore)))
    expected = {tmp_path / name for name in TREE if spec.matches(tmp_path / name)}
    assert scanned == expected
    assert scanned  # every glob set above matches something in TREE


@pytest.fixture
def lockable_tmp() -> Iterator[Path]:
    """A temporary tree whose directories get their permissions back before it is removed."""
    directory = Path(tempfile.mkdtemp(prefix="watchreload-"))
    yield directory
    for path in directory.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(directory)


SCAN_UNPRIVILEGED = """
import json, sys
from watchreload.scan import scan_files
from watchreload.spec import IgnoreMatcher
errors = []
found = list(scan_files(sys.argv[1], ["**/*.py"], IgnoreMatcher(), lambda p, e: errors.append(p)))
print(json.dumps({"found": sorted(found), "errors": errors}))
"""


def scan_without_privileges(root: Path) -> dict[str, list[str]]:
    """Scan in a child for which directory permissions are enforced, even under root."""
    result = subprocess.run(
        without_file_privileges([sys.executable, "-c", SCAN_UNPRIVILEGED, str(root)]),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    data: dict[str, list[str]] = json.loads(result.stdout)
    return data


def test_scan_prunes_ignored_directories_without_entering_them(lockable_tmp: Path) -> None:
    _make_tree(lockable_tmp, ["keep.py", "node_modules/deep/x.py"])
    (lockable_tmp / "node_modules").chmod(0)  # entering it would report an error
    result = scan_without_privileges(lockable_tmp)
    assert result == {"found": [str(lockable_tmp / "keep.py")], "errors": []}


def test_scan_reports_unreadable_directories_and_keeps_going(lockable_tmp: Path) -> None:
    _make_tree(lockable_tmp, ["a.py", "locked/b.py", "open/c.py"])
    (lockable_tmp / "locked").chmod(0)
    result = scan_without_privileges(lockable_tmp)
    assert result["found"] == [str(lockable_tmp / "a.py"), str(lockable_tmp / "open/c.py")]
    assert result["errors"] == [str(lockable_tmp / "locked")]


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    _make_tree(tmp_path, ["real/a.py"])
    (tmp_path / "real" / "loop").symlink_to(tmp_path / "real")
    found = [Path(p).name for p in scan_files(tmp_path, ["**/*.py"], IgnoreMatcher())]
    assert found == ["a.py"]
