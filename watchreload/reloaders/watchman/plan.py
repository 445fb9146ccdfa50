"""The subscription plan: a WatchSpec grouped by watch-project root, one SubscriptionPlan per root.

Pure planning: no daemon. Which watch covers a directory comes from `Watches`, which knows the watch
roots seen so far and asks its `watch_project` callable for the rest (the reloader passes the
daemon's `watch-project`; a test passes a dict lookup).
"""

from __future__ import annotations

import functools
import os
import site
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from watchreload.gitignore import GitIgnoreRules, RuleFile
from watchreload.spec import IgnoreMatcher, WatchSpec

# (watch root, the directory's path relative to it with `/` separators, "" for the root itself)
Located = tuple[str, str]
WatchProject = Callable[[str], Located]  # watch-project on a real directory path


@dataclass
class RootTarget:
    """One WatchSpec root, as seen from its subscription's relative_root."""

    path: Path  # the root as the spec names it: reported paths are built from it
    relative: str  # its path below the subscription's relative_root, "" for the same directory
    globs: frozenset[str]


@dataclass
class SubscriptionPlan:
    """Everything one watch-project root's single subscription must carry."""

    watch_root: str
    relative_root: str = ""
    targets: list[RootTarget] = field(default_factory=list)
    extra_files: dict[str, Path] = field(default_factory=dict)  # name below relative_root -> path

    def path_for(self, name: str) -> Path:
        """The path to report for a file name in one of this subscription's results."""
        extra = self.extra_files.get(name)
        if extra is not None:
            return extra
        best: RootTarget | None = None
        for target in self.targets:
            if (not target.relative or name.startswith(target.relative + "/")) and (
                best is None or len(target.relative) > len(best.relative)
            ):
                best = target
        if best is None:
            return Path(self.watch_root, self.relative_root, name)
        return best.path / name[len(best.relative) + 1 :] if best.relative else best.path / name


@dataclass(frozen=True)
class GitRules:
    """The patterns of one ignore file, placed for a subscription (its relative_root).

    `directory` is the file's directory below the subscription's directory ("" for that
    directory, or one above it); `above` is, for a file above it, the subscription's directory
    below the file's ("src" for the top `.gitignore` when `src/` is watched), else "".
    """

    directory: str
    above: str
    patterns: tuple[str, ...]


def place_git_rules(subscribed: Path, rule_files: Iterable[RuleFile]) -> list[GitRules]:
    """The rule files (GitIgnoreRules.rules_in_play) as seen from the subscribed directory."""
    placed = []
    for rule_file in rule_files:
        if rule_file.base.is_relative_to(subscribed):
            directory, above = rule_file.base.relative_to(subscribed).as_posix(), ""
        else:
            directory, above = "", subscribed.relative_to(rule_file.base).as_posix()
        placed.append(GitRules(_dot_is_empty(directory), _dot_is_empty(above), rule_file.patterns))
    return placed


def git_rules_below(
    subscribed: Path, names: Iterable[str], ignore: IgnoreMatcher, rules: GitIgnoreRules
) -> list[GitRules]:
    """The rules in play for a subscription of `subscribed`, given the names of the `.gitignore`
    files and `.git` entries the daemon lists below it; [] when they cannot go into the daemon
    (GitIgnoreRules.rules_in_play). Entries inside ignored directories play no part."""
    found = [
        subscribed / name
        for name in names
        if "/" not in name or not ignore.ignores_path(name.rpartition("/")[0])
    ]
    return place_git_rules(subscribed, rules.rules_in_play(subscribed, found) or [])


def _dot_is_empty(relative: str) -> str:
    return "" if relative == "." else relative


@dataclass
class Planned:
    """The plans by watch root, and the extra files that no watch covers and none may start."""

    plans: dict[str, SubscriptionPlan]
    stat_files: list[Path]  # installed libraries and the standard library: stat()ed instead


class Watches:
    """The watch roots known on one connection, longest first, so that the deepest watch wins."""

    def __init__(self, watch_project: WatchProject) -> None:
        self._watch_project = watch_project
        self._roots: list[str] = []

    @property
    def roots(self) -> list[str]:
        return list(self._roots)

    def add(self, roots: Iterable[str]) -> None:
        """Remember watches that exist already (the daemon's `watch-list`)."""
        self._roots[:] = sorted(set(self._roots) | set(roots), key=len, reverse=True)

    def clear(self) -> None:
        self._roots.clear()

    def find(self, directory: Path) -> Located | None:
        """The existing watch that covers an existing directory, or None."""
        real = os.path.realpath(directory)
        for root in self._roots:
            if real == root or real.startswith(root.rstrip("/") + "/"):
                relative = os.path.relpath(real, root).replace(os.sep, "/")
                return root, "" if relative == "." else relative
        return None

    def locate(self, directory: Path) -> Located:
        """The watch that covers an existing directory; watch-project starts one if none does."""
        found = self.find(directory)
        if found is not None:
            return found
        root, relative = self._watch_project(os.path.realpath(directory))
        self._roots.append(root)
        self._roots.sort(key=len, reverse=True)
        return root, relative


def plan_subscriptions(
    spec: WatchSpec,
    watches: Watches,
    before_new_watch: Callable[[Path], None] = lambda path: None,
) -> Planned:
    """Group the spec by watch-project root: one SubscriptionPlan per root.

    Extra files (in library mode, every imported module) join a watch that exists already, ours or
    another client's. Your own files start one (watch-project: your project); `before_new_watch` is
    called with such a file first. Installed libraries and the standard library never do, since
    watch-project there would crawl whatever project holds them (a pyenv checkout, a dotfiles
    repository in $HOME): they come back in `stat_files`.
    """
    anchors: list[tuple[Path, Path, str | None]] = []  # (anchor dir, spec path, extra name)
    for root in sorted(spec.roots, key=lambda r: len(r.parts)):  # parents first
        anchors.append((nearest_existing(root), root, None))
    for extra in sorted(spec.extra_files, key=is_library_file):  # your own files first
        anchors.append((nearest_existing(extra.parent), extra, extra.name))
    placed: list[tuple[str, str, str, Path, str | None]] = []
    stat_files: list[Path] = []
    for anchor, path, extra_name in anchors:
        located = watches.find(anchor)
        if located is None and extra_name is not None and is_library_file(path):
            stat_files.append(path)
            continue
        if located is None:
            if extra_name is not None:
                before_new_watch(path)
            located = watches.locate(anchor)
        watch_root, anchor_relative = located
        wanted = path.parent if extra_name is not None else path
        tail = wanted.relative_to(anchor).as_posix() if wanted != anchor else ""
        relative = "/".join(p for p in (anchor_relative, tail) if p and p != ".")
        placed.append((watch_root, anchor_relative, relative, path, extra_name))
    return Planned(_group(spec, placed), stat_files)


def _group(
    spec: WatchSpec, placed: list[tuple[str, str, str, Path, str | None]]
) -> dict[str, SubscriptionPlan]:
    plans: dict[str, SubscriptionPlan] = {}
    anchor_dirs: dict[str, list[str]] = {}
    for watch_root, anchor_relative, _, _, _ in placed:
        plans.setdefault(watch_root, SubscriptionPlan(watch_root))
        anchor_dirs.setdefault(watch_root, []).append(anchor_relative)
    for watch_root, plan in plans.items():
        plan.relative_root = common_dir(anchor_dirs[watch_root])
    for watch_root, _, relative, path, extra_name in placed:
        plan = plans[watch_root]
        below = _below(relative, plan.relative_root)
        if extra_name is not None:
            plan.extra_files["/".join(p for p in (below, extra_name) if p)] = path
        else:
            plan.targets.append(RootTarget(path, below, spec.roots[path]))
    return plans


@functools.lru_cache(maxsize=1)
def _library_prefixes() -> tuple[str, ...]:
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    prefixes.update(site.getsitepackages())
    prefixes.add(site.getusersitepackages())
    return tuple(sorted({os.path.realpath(p).rstrip("/") + "/" for p in prefixes if p}))


def is_library_file(path: Path) -> bool:
    """True for the standard library and installed packages (never for your project's files)."""
    real = os.path.realpath(path)
    parts = real.split("/")
    return (
        "site-packages" in parts or "dist-packages" in parts or real.startswith(_library_prefixes())
    )


def nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path(path.anchor)


def common_dir(paths: list[str]) -> str:
    """The longest common directory of `/`-separated relative paths ("" for the watch root)."""
    if not paths:
        return ""
    split = [p.split("/") if p else [] for p in paths]
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if any(part != parts[0] for part in parts):
            break
        common.append(parts[0])
    return "/".join(common)


def _below(relative: str, relative_root: str) -> str:
    if not relative_root:
        return relative
    if relative == relative_root:
        return ""
    return relative[len(relative_root) + 1 :]
