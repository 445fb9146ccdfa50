"""Walking a directory tree the fast way (os.scandir, pruning ignored directories as it goes), and
the snapshots StatReloader and Watchman's polling fallback compare."""

from __future__ import annotations

import logging
import os
import re
import stat as stat_module
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from watchreload.changes import Change
from watchreload.gitignore import IGNORE_FILE_NAME, GitIgnoreRules
from watchreload.spec import IgnoreMatcher, WatchSpec, compile_glob

logger = logging.getLogger(__name__)

ScanErrorHandler = Callable[[str, OSError], None]

# What identifies one version of a file. Any difference counts, not only a newer mtime: a checkout
# that restores an older mtime, or an atomic rename-save that keeps the mtime, is still a change.
Signature = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)
Snapshot = dict[str, Signature]  # path -> its signature, for every file a scan found

# File systems stamp mtimes from a clock that can lag time.time_ns() by a few milliseconds.
MTIME_SLACK_NS = 100_000_000


def combined_glob_regex(globs: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{compile_glob(g).pattern})" for g in sorted(globs)), re.DOTALL)


def log_scan_error(path: str, error: OSError) -> None:
    logger.warning("cannot read %s (%s); watching the rest", path, error.strerror or error)


def literal_suffixes(globs: Iterable[str]) -> tuple[str, ...] | None:
    """The suffixes when every glob is `**/*SUFFIX` with a literal suffix (`**/*.py`), else None.

    Such a glob matches a file wherever its name ends with SUFFIX, so the scan can test the name
    alone instead of building and matching each relative path: the common case, made cheap.
    """
    suffixes = []
    for glob in globs:
        tail = glob[4:]
        if not glob.startswith("**/*") or not tail or any(c in tail for c in "*?[\\/"):
            return None
        suffixes.append(tail)
    return tuple(suffixes) or None


def scan_files(
    root: Path | str,
    globs: Iterable[str],
    ignore: IgnoreMatcher,
    on_error: ScanErrorHandler = log_scan_error,
    gitignore: GitIgnoreRules | None = None,
) -> dict[str, Signature]:
    """Map each file under `root` that matches a glob to its `(mtime_ns, size, inode)`.

    Symlinks to files are followed (their target's stat is reported); symlinks to directories are
    not descended, so a link cycle cannot trap the scan. A root that does not exist yields nothing,
    so a directory created later is picked up by the next scan. Unreadable directories are passed
    to `on_error` and skipped.

    This is StatReloader's hot loop. Each directory is opened once and its files are stat()ed
    relative to that descriptor, so the kernel resolves one name per file instead of a whole path;
    ignored names are mostly decided without a regular expression (IgnoreMatcher.ignores_name); and
    the relative path is built only when a glob or ignore pattern needs it.

    With `gitignore`, directories that git ignores are not descended (their verdicts are cached
    until the rules change), and every `.gitignore` found is reported whatever the globs. Files
    that a rule ignores by their own name are still reported: deciding that costs a pattern match
    per file per scan, so the reloader filters the changes instead (BaseReloader).
    """
    suffixes = literal_suffixes(globs)
    filters = _Filters(
        suffixes=suffixes,
        match=None if suffixes else combined_glob_regex(globs).fullmatch,
        ignores_name=ignore.ignores_name,
        path_ignored=ignore.path_regex.fullmatch if ignore.path_regex else None,
        gitignore=gitignore,
    )
    files: dict[str, Signature] = {}
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]  # (directory, its relative path + "/")
    while stack:
        directory, relative_dir = stack.pop()
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            on_error(directory, exc)
            continue
        try:
            _scan_directory(fd, directory, relative_dir, filters, files, stack, on_error)
        finally:
            os.close(fd)
    return files


class _Filters(NamedTuple):
    suffixes: tuple[str, ...] | None
    match: Callable[[str], re.Match[str] | None] | None
    ignores_name: Callable[[str], bool]
    path_ignored: Callable[[str], re.Match[str] | None] | None
    gitignore: GitIgnoreRules | None


def _scan_directory(
    fd: int,
    directory: str,
    relative_dir: str,
    filters: _Filters,
    files: dict[str, Signature],
    stack: list[tuple[str, str]],
    on_error: ScanErrorHandler,
) -> None:
    """Add the matching files of one open directory to `files`, its subdirectories to `stack`."""
    suffixes, match, ignores_name, path_ignored, gitignore = filters
    prefix = directory.rstrip("/") + "/"
    with os.scandir(fd) as entries:
        for entry in entries:
            name = entry.name
            if ignores_name(name):
                continue
            relative = relative_dir + name if path_ignored or match else name
            if path_ignored and path_ignored(relative):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if gitignore is None or not gitignore.ignores(prefix + name, is_dir=True):
                        stack.append((prefix + name, relative_dir + name + "/"))
                    continue
                if suffixes is not None:
                    wanted = name.endswith(suffixes)
                else:
                    wanted = match is None or match(relative) is not None
                # The rules themselves are watched whatever the globs.
                if not wanted and (gitignore is None or name != IGNORE_FILE_NAME):
                    continue
                st = entry.stat()
            except FileNotFoundError:
                continue  # removed, or a dangling symlink
            except OSError as exc:
                on_error(prefix + name, exc)
                continue
            if stat_module.S_ISREG(st.st_mode):
                files[prefix + name] = (st.st_mtime_ns, st.st_size, st.st_ino)


# -- snapshots: what a scan found, and what differs between two -----------------------------------


def signature_of(path: str | os.PathLike[str]) -> Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def written_since(signature: Signature | None, since_ns: int) -> bool:
    """True when a file with this signature was written at or after `since_ns` (time.time_ns()).

    Decides whether a file that has only now joined the watched files (a module imported after
    start) changed while it was not watched yet.
    """
    return signature is not None and signature[0] >= since_ns - MTIME_SLACK_NS


def diff_snapshots(previous: Snapshot, current: Snapshot) -> Iterator[tuple[str, Change]]:
    for path, signature in current.items():
        old = previous.get(path)
        if old is None:
            yield path, Change.added
        elif old != signature:
            yield path, Change.modified
    for path in previous.keys() - current.keys():
        yield path, Change.deleted


class SpecScanner:
    """Snapshots of everything a WatchSpec names: its extra files, then a scan of each root.

    `spec` is read at every snapshot, so the scan follows what is watched now. An unreadable path
    is logged once, not at every scan.
    """

    def __init__(self, spec: Callable[[], WatchSpec]) -> None:
        self._spec = spec
        self._unreadable: set[str] = set()
        self.extra_paths: frozenset[str] = frozenset()  # the extra files the last snapshot found

    def snapshot(self) -> Snapshot:
        spec = self._spec()
        files: Snapshot = {}
        for path in spec.extra_files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            files[os.fspath(path)] = (st.st_mtime_ns, st.st_size, st.st_ino)
        self.extra_paths = frozenset(files)
        for root, globs in spec.roots.items():
            files.update(scan_files(root, globs, spec.ignore, self._warn_once, spec.gitignore))
            if spec.gitignore is not None:
                for path in spec.gitignore.outer_ignore_files(root):
                    signature = signature_of(path)
                    if signature is not None:
                        files[os.fspath(path)] = signature
        return files

    def _warn_once(self, path: str, error: OSError) -> None:
        if path not in self._unreadable:
            self._unreadable.add(path)
            log_scan_error(path, error)
