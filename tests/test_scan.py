"""Walking a tree (scan_files) and comparing snapshots of a WatchSpec (watchreload.scan)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import without_file_privileges
from watchreload.changes import Change
from watchreload.scan import (
    MTIME_SLACK_NS,
    SpecScanner,
    diff_snapshots,
    scan_files,
    signature_of,
    written_since,
)
from watchreload.spec import DEFAULT_IGNORE_PATTERNS, IgnoreMatcher, WatchSpec


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


def scan_without_privileges(root: Path, script: str = SCAN_UNPRIVILEGED) -> dict[str, Any]:
    """Scan in a child for which directory permissions are enforced, even under root."""
    result = subprocess.run(
        without_file_privileges([sys.executable, "-c", script, str(root)]),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    data: dict[str, Any] = json.loads(result.stdout)
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


# -- snapshots ------------------------------------------------------------------------------------


def test_diff_snapshots_names_added_modified_and_deleted_paths() -> None:
    previous = {"same": (1, 1, 1), "edited": (1, 1, 2), "gone": (1, 1, 3)}
    current = {"same": (1, 1, 1), "edited": (2, 1, 2), "new": (1, 1, 4)}
    assert sorted(diff_snapshots(previous, current)) == [
        ("edited", Change.modified),
        ("gone", Change.deleted),
        ("new", Change.added),
    ]


def test_signature_of_and_written_since(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    assert signature_of(path) is None
    path.write_text("x = 1\n")
    st = path.stat()
    assert signature_of(path) == (st.st_mtime_ns, st.st_size, st.st_ino)
    assert written_since(signature_of(path), st.st_mtime_ns)
    assert written_since(signature_of(path), st.st_mtime_ns + MTIME_SLACK_NS)  # clock skew
    assert not written_since(signature_of(path), st.st_mtime_ns + MTIME_SLACK_NS + 1)
    assert not written_since(None, 0)


def test_spec_scanner_follows_the_spec_and_records_the_extra_files_found(tmp_path: Path) -> None:
    _make_tree(tmp_path, ["app.py", "notes.txt", "node_modules/x.py"])
    extra, missing = tmp_path / "notes.txt", tmp_path / "missing.cfg"
    specs = [WatchSpec.build([tmp_path], extra_files=[extra, missing])]
    scanner = SpecScanner(lambda: specs[-1])
    assert set(scanner.snapshot()) == {str(tmp_path / "app.py"), str(extra)}
    assert scanner.extra_paths == {str(extra)}
    specs.append(WatchSpec.build([tmp_path], ["**/*.txt"]))
    assert set(scanner.snapshot()) == {str(extra)}
    assert scanner.extra_paths == frozenset()


SCANNER_UNPRIVILEGED = """
import json, logging, sys
from watchreload.scan import SpecScanner
from watchreload.spec import WatchSpec
warnings = []
class Record(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())
logging.getLogger("watchreload").addHandler(Record())
scanner = SpecScanner(lambda: WatchSpec.build([sys.argv[1]]))
found = [sorted(scanner.snapshot()) for _ in range(3)]
print(json.dumps({"found": found, "warnings": warnings}))
"""


def test_spec_scanner_warns_once_per_unreadable_directory(lockable_tmp: Path) -> None:
    _make_tree(lockable_tmp, ["a.py", "locked/b.py"])
    (lockable_tmp / "locked").chmod(0)
    result = scan_without_privileges(lockable_tmp, SCANNER_UNPRIVILEGED)
    assert result["found"] == [[str(lockable_tmp / "a.py")]] * 3
    assert result["warnings"] == [
        f"cannot read {lockable_tmp / 'locked'} (Permission denied); watching the rest"
    ]


def _git_repo(root: Path, rules: str, files: list[str]) -> Path:
    _make_tree(root, files)
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".gitignore").write_text(rules)
    return root


def test_scan_prunes_git_ignored_directories_and_reports_the_rule_files(tmp_path: Path) -> None:
    from watchreload.gitignore import GitIgnoreRules

    repo = _git_repo(
        tmp_path / "repo",
        "build/\n/gen\n*_pb2.py\n",
        [
            "app.py",
            "build/lib/app.py",
            "gen/api.py",
            "src/gen/api.py",
            "api_pb2.py",
            "src/.gitignore",
        ],
    )
    rules = GitIgnoreRules()
    found = {
        Path(p).relative_to(repo).as_posix()
        for p in scan_files(repo, ["**/*.py"], IgnoreMatcher(), gitignore=rules)
    }
    # Directories are pruned; a file-level rule is left to the reloader's filter (one pattern
    # match per change instead of one per file per scan); every .gitignore is reported.
    assert found == {"app.py", "src/gen/api.py", "api_pb2.py", ".gitignore", "src/.gitignore"}
    without = {
        Path(p).relative_to(repo).as_posix() for p in scan_files(repo, ["**/*.py"], IgnoreMatcher())
    }
    assert {"build/lib/app.py", "gen/api.py"} <= without and ".gitignore" not in without


def test_spec_scanner_watches_the_ignore_files_above_a_root(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path / "repo", "*.log\n", ["src/app.py"])
    (repo / ".git" / "info" / "exclude").write_text("scratch/\n")
    spec = WatchSpec.build([repo / "src"])
    snapshot = SpecScanner(lambda: spec).snapshot()
    assert set(snapshot) == {
        os.fspath(repo / "src" / "app.py"),
        os.fspath(repo / ".gitignore"),
        os.fspath(repo / ".git" / "info" / "exclude"),
    }
    assert set(
        SpecScanner(lambda: WatchSpec.build([repo / "src"], gitignore=False)).snapshot()
    ) == {os.fspath(repo / "src" / "app.py")}
