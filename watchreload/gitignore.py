"""The project's git ignore rules: `.gitignore` files at every level and `.git/info/exclude`.

Rules are read with pathspec's `GitIgnoreSpec` (git's own pattern semantics) and apply inside a
git working tree only, as git applies them: a `.gitignore` speaks for its own directory and
everything below it, a deeper file overrides a shallower one, `.git/info/exclude` comes last
(weakest), and nothing inside an ignored directory can be re-included by a `!` rule. The user's
global excludes file (`core.excludesFile`) is not read: it describes the user's editor and
machine, not the project.

Files are read lazily, the first time a path below their directory is asked about, and kept until
`refresh()` finds that one of them was written, created or removed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

logger = logging.getLogger(__name__)

IGNORE_FILE_NAME = ".gitignore"
EXCLUDE_FILE = Path("info", "exclude")  # inside the git directory

FileSignature = tuple[int, int, int] | None  # (mtime_ns, size, inode); None: no such file


@dataclass(frozen=True)
class RuleFile:
    """One ignore file and the directory its patterns are relative to."""

    path: Path
    base: Path
    signature: FileSignature
    spec: pathspec.GitIgnoreSpec | None  # None: the file does not exist or holds no pattern
    patterns: tuple[str, ...] = ()  # the pattern lines as written (no blank line, no comment)
    _base_length: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_base_length", len(os.fspath(self.base)))

    @property
    def negates(self) -> bool:
        """True when a `!` rule here can re-include what another rule ignores."""
        return any(p.startswith("!") for p in self.patterns)

    def verdict(self, path: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included by a `!` rule, None: no rule here speaks of it.

        `path` is absolute and below `base`."""
        if self.spec is None:
            return None
        relative = path[self._base_length :].lstrip("/")
        return self.spec.check_file(relative + "/" if is_dir else relative).include


def _signature(path: Path) -> FileSignature:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _read_rules(path: Path, base: Path) -> RuleFile:
    signature = _signature(path)
    if signature is None:
        return RuleFile(path, base, None, None)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        logger.warning("cannot read %s (%s); its ignore rules are not applied", path, exc)
        return RuleFile(path, base, signature, None)
    patterns = tuple(line for line in lines if line.strip() and not line.startswith("#"))
    spec = pathspec.GitIgnoreSpec.from_lines(patterns) if patterns else None
    return RuleFile(path, base, signature, spec, patterns)


_NO_RULES = RuleFile(Path(IGNORE_FILE_NAME), Path(), None, None)  # for directories without one


def _ignore_file_of(directory: str) -> str:
    return os.path.join(directory, IGNORE_FILE_NAME)


def _common_git_dir(top: Path) -> Path:
    """The git directory holding `info/exclude` for the work tree at `top`.

    `.git` is that directory, or a `gitdir:` file (a linked work tree, a submodule) naming one,
    which in a linked work tree names the shared directory in its `commondir` file.
    """
    dot_git = top / ".git"
    try:
        text = dot_git.read_text(encoding="utf-8") if dot_git.is_file() else ""
    except OSError:
        text = ""
    if not text.startswith("gitdir:"):
        return dot_git
    git_dir = top / text.removeprefix("gitdir:").strip()
    try:
        return git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return git_dir


class GitIgnoreRules:
    """Answers "does git ignore this path?" for absolute paths, under any number of work trees.

    The scan asks about every directory and the reloader about every change, so the caches are
    keyed by the path's string (cheaper to hash than a Path) and each directory remembers the
    rule files that speak for it (`_chains`), its verdict, and its work tree's top.
    """

    def __init__(self) -> None:
        self._tops: dict[str, str | None] = {}  # directory -> its work tree's top, if any
        self._rule_files: dict[str, RuleFile] = {}  # directory -> its .gitignore
        self._absent: set[str] = set()  # directories without one (most of them: kept cheap)
        self._excludes: dict[str, RuleFile] = {}  # work tree top -> .git/info/exclude
        self._chains: dict[str, tuple[RuleFile, ...]] = {}  # directory -> rules, deepest first
        self._dir_verdicts: dict[str, bool] = {}  # directory -> ignored, while rules stand
        self._own_tops: set[str] = set()  # watched roots git ignores: rules apply from there down
        self.generation = 0  # counts the refresh() calls that found changed rules

    def watch_root(self, root: Path | str) -> None:
        """Say that `root` is watched explicitly. When git ignores it (it lies in a directory an
        enclosing repository ignores, such as a scratch or build directory), it is watched all
        the same, as a work tree of its own: only the ignore files inside it apply. Otherwise
        every edit in it would be dropped without a word."""
        path = os.fspath(root)
        if path in self._own_tops or not self.ignores(path, is_dir=True):
            return
        self._own_tops.add(path)
        below = path.rstrip(os.sep) + os.sep
        for cache in (self._tops, self._dir_verdicts, self._chains):
            for key in [k for k in cache if k == path or k.startswith(below)]:
                del cache[key]
        logger.info(
            "%s is ignored by git (by the rules of the repository around it); watching it anyway, "
            "with only the .gitignore files inside it",
            path,
        )

    def ignores(self, path: Path | str, *, is_dir: bool = False) -> bool:
        """True when git ignores `path` (absolute), or a directory holding it."""
        path = os.fspath(path)
        if is_dir:  # the scan asks this of every directory, every time: answer from the cache
            known = self._dir_verdicts.get(path)
            if known is not None:
                return known
        parent = os.path.dirname(path)
        top = self._top_of(path if is_dir else parent)
        if top is None or path == top:
            return False
        if is_dir:
            return self._ignores_dir(path, top)
        if parent != top and self._ignores_dir(parent, top):
            return True
        return self._verdict(path, False, parent, top)

    def ignore_files(self) -> list[Path]:
        """Every ignore file read so far (existing or not): the files whose edits change rules."""
        absent = [Path(directory, IGNORE_FILE_NAME) for directory in self._absent]
        return [r.path for r in (*self._rule_files.values(), *self._excludes.values())] + absent

    def is_ignore_file(self, path: Path) -> bool:
        return path.name == IGNORE_FILE_NAME or any(r.path == path for r in self._excludes.values())

    def refresh(self, seen: Iterable[Path] = ()) -> bool:
        """Re-read ignore files that were written, created or removed; True when any was.

        `seen` names ignore files a watcher saw change: one not read so far is read now (it
        would be at the next question anyway), so that its arrival counts as a change.
        """
        changed = False
        for path in seen:
            directory = os.fspath(path.parent)
            if (
                path.name == IGNORE_FILE_NAME
                and directory not in self._rule_files
                and directory not in self._absent
                and self._top_of(directory) is not None
            ):
                rule_file = self._rule_files[directory] = _read_rules(path, path.parent)
                changed = changed or rule_file.spec is not None
        for directory in [d for d in self._absent if os.path.lexists(_ignore_file_of(d))]:
            self._absent.discard(directory)
            self._rule_files[directory] = _read_rules(
                Path(directory, IGNORE_FILE_NAME), Path(directory)
            )
            changed = True
        for rules in (self._rule_files, self._excludes):
            for directory, rule_file in list(rules.items()):
                if _signature(rule_file.path) != rule_file.signature:
                    rules[directory] = _read_rules(rule_file.path, rule_file.base)
                    changed = True
        if changed:
            self._chains.clear()
            self._dir_verdicts.clear()
            self.generation += 1
            logger.info("git ignore rules changed; applying them from now on")
        return changed

    def filter(self, paths: Iterable[Path]) -> list[Path]:
        """The paths that git does not ignore."""
        return [p for p in paths if not self.ignores(p)]

    def work_tree(self, directory: Path) -> Path | None:
        """The top of the git work tree holding `directory`, or None outside one."""
        top = self._top_of(os.fspath(directory))
        return None if top is None else Path(top)

    def outer_ignore_files(self, directory: Path) -> list[Path]:
        """The ignore files that speak for `directory` but lie outside it: the `.gitignore` of
        each directory above it, up to its work tree's top, and `.git/info/exclude`.

        A scan or a subscription of `directory` sees the ignore files inside it; these it must
        be shown as well, so that editing them takes effect.
        """
        top = self.work_tree(directory)
        if top is None:
            return []
        above = [d / IGNORE_FILE_NAME for d in directory.parents if d.is_relative_to(top)]
        return [*above, self._exclude_file(os.fspath(top)).path]

    def rules_in_play(self, directory: Path, ignore_files: Iterable[Path]) -> list[RuleFile] | None:
        """Every rule file that applies below `directory`, given the `.gitignore` files (and
        `.git` entries) found inside it, weakest last; None when a `!` rule could undo another
        rule, or a nested work tree has rules of its own: then only a per-path check is exact.

        `.gitignore` files inside directories that git or the rules above ignore are left out,
        as git leaves them out.
        """
        top_path = self.work_tree(directory)
        if top_path is None:
            return []
        below = os.fspath(directory).rstrip(os.sep) + os.sep
        if any(own_top.startswith(below) for own_top in self._own_tops):
            return None  # a watched root that the rules here ignore lies below: per path only
        top = os.fspath(top_path)
        files: dict[Path, RuleFile] = {}
        for path in ignore_files:
            base = os.fspath(path.parent)
            if self._top_of(base) != top or (path.name == ".git" and base != top):
                return None  # a nested repository: its own rules, not these
            if path.name != IGNORE_FILE_NAME:
                continue
            if base == top or not self._ignores_dir(base, top):
                files[path] = self._rule_file(base)
        for parent in (directory, *directory.parents):
            if not parent.is_relative_to(top_path):
                break
            files[parent / IGNORE_FILE_NAME] = self._rule_file(os.fspath(parent))
        in_play = [f for f in (*files.values(), self._exclude_file(top)) if f.patterns]
        return None if any(f.negates for f in in_play) else in_play

    # -- inner workings (paths as strings) -------------------------------------------------------

    def _ignores_dir(self, directory: str, top: str) -> bool:
        known = self._dir_verdicts.get(directory)
        if known is not None:
            return known
        parent = os.path.dirname(directory)
        verdict = (parent != top and self._ignores_dir(parent, top)) or self._verdict(
            directory, True, parent, top
        )
        self._dir_verdicts[directory] = verdict
        return verdict

    def _verdict(self, path: str, is_dir: bool, directory: str, top: str) -> bool:
        """The last rule that speaks of `path` (in `directory`), deepest .gitignore first, then
        info/exclude."""
        for rule_file in self._chain(directory, top):
            verdict = rule_file.verdict(path, is_dir)
            if verdict is not None:
                return verdict
        return bool(self._exclude_file(top).verdict(path, is_dir))

    def _chain(self, directory: str, top: str) -> tuple[RuleFile, ...]:
        """The rule files with patterns that speak for `directory`: its own, then its parents'."""
        chain = self._chains.get(directory)
        if chain is None:
            above = () if directory == top else self._chain(os.path.dirname(directory), top)
            own = self._rule_file(directory)
            chain = (own, *above) if own.spec is not None else above
            self._chains[directory] = chain
        return chain

    def _rule_file(self, directory: str) -> RuleFile:
        rule_file = self._rule_files.get(directory)
        if rule_file is None:
            if directory in self._absent:
                return _NO_RULES
            if not os.path.lexists(_ignore_file_of(directory)):
                self._absent.add(directory)
                return _NO_RULES
            base = Path(directory)
            rule_file = _read_rules(base / IGNORE_FILE_NAME, base)
            self._rule_files[directory] = rule_file
        return rule_file

    def _exclude_file(self, top: str) -> RuleFile:
        rule_file = self._excludes.get(top)
        if rule_file is None:
            base = Path(top)
            rule_file = _read_rules(_common_git_dir(base) / EXCLUDE_FILE, base)
            self._excludes[top] = rule_file
        return rule_file

    def _top_of(self, directory: str) -> str | None:
        known = self._tops.get(directory, "")
        if known != "":
            return known
        parent = os.path.dirname(directory)
        if directory in self._own_tops or os.path.lexists(os.path.join(directory, ".git")):
            top: str | None = directory
        elif parent == directory:
            top = None
        else:
            top = self._top_of(parent)
        self._tops[directory] = top
        return top
