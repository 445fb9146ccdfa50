"""Walking a directory tree the fast way: os.scandir, pruning ignored directories as it goes."""

from __future__ import annotations

import logging
import os
import re
import stat as stat_module
from collections.abc import Callable, Iterable
from pathlib import Path

from watchreload.spec import IgnoreMatcher, compile_glob

logger = logging.getLogger(__name__)

ScanErrorHandler = Callable[[str, OSError], None]

# What identifies one version of a file. Any difference counts, not only a newer mtime: a checkout
# that restores an older mtime, or an atomic rename-save that keeps the mtime, is still a change.
Signature = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)


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
    """
    suffixes = literal_suffixes(globs)
    match = None if suffixes else combined_glob_regex(globs).fullmatch
    ignores_name = ignore.ignores_name
    path_ignored = ignore.path_regex.fullmatch if ignore.path_regex else None
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
        prefix = directory.rstrip("/") + "/"
        try:
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
                            stack.append((prefix + name, relative_dir + name + "/"))
                            continue
                        if suffixes is not None:
                            if not name.endswith(suffixes):
                                continue
                        elif match is not None and match(relative) is None:
                            continue
                        st = entry.stat()
                    except FileNotFoundError:
                        continue  # removed, or a dangling symlink
                    except OSError as exc:
                        on_error(prefix + name, exc)
                        continue
                    if stat_module.S_ISREG(st.st_mode):
                        files[prefix + name] = (st.st_mtime_ns, st.st_size, st.st_ino)
        finally:
            os.close(fd)
    return files
