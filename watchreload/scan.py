"""Walking a directory tree the fast way: os.scandir, pruning ignored directories as it goes."""

from __future__ import annotations

import logging
import os
import re
import stat as stat_module
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from watchreload.spec import IgnoreMatcher, compile_glob

logger = logging.getLogger(__name__)

ScanErrorHandler = Callable[[str, OSError], None]


def combined_glob_regex(globs: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{compile_glob(g).pattern})" for g in sorted(globs)), re.DOTALL)


def log_scan_error(path: str, error: OSError) -> None:
    logger.warning("cannot read %s (%s); watching the rest", path, error.strerror or error)


def iter_matching_files(
    root: Path,
    globs: Iterable[str],
    ignore: IgnoreMatcher,
    on_error: ScanErrorHandler = log_scan_error,
) -> Iterator[tuple[str, os.stat_result]]:
    """Yield `(absolute path, stat result)` for files under `root` matching any glob.

    Symlinks to files are followed (their target's stat is reported); symlinks to directories are
    not descended, so a link cycle cannot trap the scan. A root that does not exist yields nothing,
    so a directory created later is picked up by the next scan. Unreadable directories are passed
    to `on_error` and skipped.
    """
    match = combined_glob_regex(globs).fullmatch
    # Hot loop: bind the matchers once. Name patterns apply to every entry, path patterns only
    # when some were given.
    name_ignored = ignore.name_regex.fullmatch if ignore.name_regex else None
    path_ignored = ignore.path_regex.fullmatch if ignore.path_regex else None
    stack: list[tuple[str, str]] = [(os.fspath(root), "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = os.scandir(directory)
        except FileNotFoundError:
            continue
        except OSError as exc:
            on_error(directory, exc)
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if name_ignored is not None and name_ignored(name) is not None:
                    continue
                relative = prefix + name
                if path_ignored is not None and path_ignored(relative) is not None:
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, relative + "/"))
                        continue
                    if match(relative) is None:
                        continue
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # removed, or a dangling symlink
                except OSError as exc:
                    on_error(entry.path, exc)
                    continue
                if stat_module.S_ISREG(st.st_mode):
                    yield entry.path, st
