"""What is watched: roots, include globs, ignore patterns and extra files, and how they match.

Globs use Watchman's wildmatch semantics, matched against the path relative to the root with `/`
separators: `**` crosses directories (`**/` also matches no directory at all), `*` and `?` do not
cross `/`, `[...]` is a character class (`[!...]` negated), `\\` escapes. Dot files are matched like
any other name (Watchman's `includedotfiles`).

An ignore pattern without a `/` is compared with every path component's name, so `node_modules`
prunes such a directory at any depth and `*.pyc` drops such files anywhere. A pattern with a `/` is
matched against the whole relative path (`docs/_build/**`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from watchreload.errors import ConfigError
from watchreload.gitignore import IGNORE_FILE_NAME, GitIgnoreRules

DEFAULT_INCLUDE_GLOBS: tuple[str, ...] = ("**/*.py",)

DEFAULT_IGNORE_PATTERNS: tuple[str, ...] = (
    # version control
    ".git",
    ".hg",
    ".svn",
    ".bzr",
    # Python byproducts, tool caches and virtual environments
    "__pycache__",
    "*.pyc",
    "*.pyo",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "*.egg-info",
    # other ecosystems
    "node_modules",
    # editors: swap, backup and lock files
    ".idea",
    ".*.swp",
    ".*.swx",
    "*~",
    ".#*",
    "#*#",
    "4913",
)


GlobTokenKind = Literal["literal", "star", "any", "class", "globstar_dir", "globstar_end"]


@dataclass(frozen=True)
class GlobToken:
    """One piece of a glob: `text` is the pattern text it came from.

    `star` is `*`, or a `**` that is not a whole path segment (which means `*`); `globstar_dir`
    is a `**/` that starts a segment (zero or more directories, the `/` included); `globstar_end`
    is a trailing `**` that starts a segment (everything below). For a `literal` (a character or an
    escaped one) `value` is the character; for a `class` it is the body between the brackets,
    without the `!` or `^` that `negate` stands for.
    """

    kind: GlobTokenKind
    text: str
    value: str = ""
    negate: bool = False


@functools.lru_cache(maxsize=512)
def tokenize_glob(pattern: str) -> tuple[GlobToken, ...]:
    """Split a wildmatch glob into tokens; both the matcher and the Watchman translation read these.

    Raises ConfigError for an unclosed `[` or a trailing lone `\\`.
    """
    tokens: list[GlobToken] = []
    i = 0
    while i < len(pattern):
        token = _next_token(pattern, i)
        tokens.append(token)
        i += len(token.text)
    return tuple(tokens)


def _next_token(pattern: str, i: int) -> GlobToken:
    c = pattern[i]
    if c == "*":
        return _star_token(pattern, i)
    if c == "?":
        return GlobToken("any", c)
    if c == "[":
        return _class_token(pattern, i)
    if c == "\\":
        if i + 1 >= len(pattern):
            raise ConfigError(f"glob {pattern!r} ends with a lone '\\'; remove or escape it")
        return GlobToken("literal", pattern[i : i + 2], pattern[i + 1])
    return GlobToken("literal", c, c)


def _star_token(pattern: str, i: int) -> GlobToken:
    if not pattern.startswith("**", i):
        return GlobToken("star", "*")
    at_start = i == 0 or pattern[i - 1] == "/"
    j = i + 2
    if at_start and j < len(pattern) and pattern[j] == "/":
        return GlobToken("globstar_dir", "**/")
    if at_start and j == len(pattern):
        return GlobToken("globstar_end", "**")
    return GlobToken("star", "**")


def _class_token(pattern: str, i: int) -> GlobToken:
    n = len(pattern)
    j = i + 1
    negate = j < n and pattern[j] in "!^"
    if negate:
        j += 1
    if j < n and pattern[j] == "]":
        j += 1
    while j < n and pattern[j] != "]":
        j += 1
    if j >= n:
        raise ConfigError(
            f"glob {pattern!r} has an unclosed '['; close the character class or escape it as '\\['"
        )
    return GlobToken("class", pattern[i : j + 1], pattern[i + 1 + negate : j], negate)


_TOKEN_REGEX: dict[str, str] = {
    "star": "[^/]*",
    "any": "[^/]",
    "globstar_dir": "(?:.*/)?",  # zero or more directories
    "globstar_end": ".*",  # everything below
}


def _token_regex(token: GlobToken) -> str:
    if token.kind == "literal":
        return re.escape(token.value)
    if token.kind == "class":
        body = token.value.replace("\\", "\\\\")
        return f"[^/{body}]" if token.negate else f"(?!/)[{body}]"
    return _TOKEN_REGEX[token.kind]


@functools.lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Translate a wildmatch glob into a regular expression over `/`-separated relative paths."""
    if not pattern or pattern.startswith("/") or "\0" in pattern:
        raise ConfigError(
            f"glob {pattern!r} is invalid; pass a non-empty pattern relative to the watched "
            "directory, such as '**/*.py'"
        )
    return re.compile("".join(map(_token_regex, tokenize_glob(pattern))), re.DOTALL)


def _has_wildcard(pattern: str) -> bool:
    return any(c in pattern for c in "*?[\\")


def glob_matches(pattern: str, relative_path: str) -> bool:
    return compile_glob(pattern).fullmatch(relative_path) is not None


@dataclass(frozen=True)
class IgnoreMatcher:
    """Decides which names and relative paths are ignored."""

    patterns: tuple[str, ...] = DEFAULT_IGNORE_PATTERNS

    def __post_init__(self) -> None:
        for pattern in self.patterns:
            compile_glob(pattern)  # validate early: one clear error instead of one per file

    @functools.cached_property
    def ignores_name(self) -> Callable[[str], bool]:
        """A test of one file or directory name, ignored wherever it appears.

        The scan runs this on every entry of the tree, so the common shapes skip the regular
        expression: literal names (`node_modules`) are a set lookup, `*SUFFIX` patterns (`*.pyc`)
        one `str.endswith`, and the remaining patterns run only on names that start with one of
        their literal first characters (`.*.swp`, `#*#`).
        """
        literal: set[str] = set()
        suffixes: list[str] = []
        others: list[str] = []
        for pattern in self.name_patterns:
            tail = pattern[1:]
            if not _has_wildcard(pattern):
                literal.add(pattern)
            elif pattern.startswith("*") and tail and not _has_wildcard(tail):
                suffixes.append(tail)
            else:
                others.append(pattern)
        literal_names = frozenset(literal)
        suffix_tuple = tuple(suffixes)
        regex = re.compile("|".join(f"(?:{compile_glob(p).pattern})" for p in others), re.DOTALL)
        first_chars = {p[0] for p in others}
        gate = None if not others or first_chars & set("*?[\\") else frozenset(first_chars)

        def ignores_name(name: str) -> bool:
            if name in literal_names or (suffix_tuple and name.endswith(suffix_tuple)):
                return True
            if not others or (gate is not None and name[:1] not in gate):
                return False
            return regex.fullmatch(name) is not None

        return ignores_name

    @functools.cached_property
    def path_regex(self) -> re.Pattern[str] | None:
        parts = [compile_glob(p).pattern for p in self.patterns if "/" in p]
        return re.compile("|".join(f"(?:{p})" for p in parts), re.DOTALL) if parts else None

    @property
    def name_patterns(self) -> tuple[str, ...]:
        return tuple(p for p in self.patterns if "/" not in p)

    @property
    def path_patterns(self) -> tuple[str, ...]:
        return tuple(p for p in self.patterns if "/" in p)

    def ignores_path(self, relative_path: str) -> bool:
        """True when a relative path (file or directory) or any of its parents is ignored."""
        parts = relative_path.split("/")
        if any(self.ignores_name(part) for part in parts):
            return True
        regex = self.path_regex
        if regex is None:
            return False
        return any(regex.fullmatch("/".join(parts[: k + 1])) for k in range(len(parts)))


@dataclass(frozen=True)
class WatchSpec:
    """One description of what to watch, shared by every backend.

    `roots` maps each watched directory to its include globs. `extra_files` are watched whatever
    the globs, ignore patterns and git ignore rules say.

    `gitignore`, when set, holds the project's git ignore rules: a path they ignore is not
    watched even where a glob includes it, and the `.gitignore` files themselves are watched
    (outside ignored directories) whatever the globs, so that edits to them take effect. It is a
    cache of the rule files, not part of what a spec says, so it takes no part in `==`.
    """

    roots: dict[Path, frozenset[str]] = field(default_factory=dict)
    extra_files: frozenset[Path] = frozenset()
    ignore: IgnoreMatcher = field(default_factory=IgnoreMatcher)
    gitignore: GitIgnoreRules | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        roots: Iterable[str | os.PathLike[str]],
        include_globs: Iterable[str] = DEFAULT_INCLUDE_GLOBS,
        ignore_patterns: Iterable[str] = DEFAULT_IGNORE_PATTERNS,
        extra_files: Iterable[str | os.PathLike[str]] = (),
        gitignore: bool = True,
    ) -> WatchSpec:
        globs = frozenset(include_globs)
        for glob in globs:
            compile_glob(glob)
        absolute_roots = {Path(root).absolute(): globs for root in roots}
        rules = GitIgnoreRules() if gitignore else None
        if rules is not None:
            for root in absolute_roots:
                rules.watch_root(root)
        return cls(
            roots=absolute_roots,
            extra_files=frozenset(Path(f).absolute() for f in extra_files),
            ignore=IgnoreMatcher(tuple(ignore_patterns)),
            gitignore=rules,
        )

    def matches(self, path: Path) -> bool:
        """True when an absolute path is watched by this spec."""
        if path in self.extra_files:
            return True
        for root, globs in self.roots.items():
            try:
                relative = path.relative_to(root).as_posix()
            except ValueError:
                continue
            if relative == "." or self.ignore.ignores_path(relative):
                continue
            rules = self.gitignore
            if rules is not None and path.name == IGNORE_FILE_NAME:
                return not rules.ignores(path.parent, is_dir=True)
            if rules is not None and rules.ignores(path):
                return False
            if any(glob_matches(g, relative) for g in globs):
                return True
        return False
