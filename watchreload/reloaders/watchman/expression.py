"""Compiling a subscription plan into the query the daemon evaluates (pure: no I/O).

The expression carries every include glob, extra file and ignore pattern of the plan, so the daemon
sends only what watchreload would have reported itself. Globs are translated to Watchman's
wildmatch from the same tokens that spec.compile_glob matches with, so both read a glob alike.
"""

from __future__ import annotations

from typing import Any

from watchreload.reloaders.watchman.plan import SubscriptionPlan
from watchreload.spec import GlobToken, IgnoreMatcher, tokenize_glob
from watchreload.vcs import DEFERRED_STATES

# mtime_ns, size and ino: each reported file's signature as the daemon saw it (scan.Signature),
# which a switch to polling compares with (reloader.py).
FIELDS: list[str] = ["name", "exists", "new", "type", "mtime_ns", "size", "ino"]

_WILDMATCH_SPECIAL = frozenset("*?[\\")


def escape_wildmatch(text: str) -> str:
    return "".join(f"\\{c}" if c in _WILDMATCH_SPECIAL else c for c in text)


def _wildmatch_text(token: GlobToken) -> str:
    # spec.py reads a `**` that is not a whole path segment like `*`; Watchman's wildmatch would
    # then match nothing, so it is written as `*`.
    return "*" if token.kind == "star" else token.text


def to_wildmatch(pattern: str) -> str:
    """Rewrite a watchreload glob so that Watchman's wildmatch reads it the way spec.py does.

    The one difference: spec.py treats a `**` that is not a whole path segment like `*`, whereas
    Watchman's wildmatch then matches nothing. Everything else is passed through unchanged.
    """
    return "".join(map(_wildmatch_text, tokenize_glob(pattern)))


def match_term(pattern: str) -> list[Any]:
    return ["match", pattern, "wholename", {"includedotfiles": True}]


def ignore_terms(
    prefix: str, name_patterns: tuple[str, ...], path_patterns: tuple[str, ...]
) -> list[Any]:
    """Terms true for a file that IgnoreMatcher.ignores_path() ignores below `prefix`.

    `prefix` is the escaped wildmatch prefix of the watched root ("" or "src/"). A name pattern
    ignores a file of that name and everything below a directory of that name; a path pattern
    ignores the path it matches and everything below it.
    """
    terms: list[Any] = []
    for pattern in name_patterns:
        wild = to_wildmatch(pattern)
        terms.append(match_term(f"{prefix}**/{wild}"))
        terms.append(match_term(f"{prefix}**/{wild}/**"))
    for pattern in path_patterns:
        wild = to_wildmatch(pattern)
        terms.append(match_term(f"{prefix}{wild}"))
        terms.append(match_term(f"{prefix}{wild}/**"))
    return terms


def expression(plan: SubscriptionPlan, ignore: IgnoreMatcher) -> list[Any]:
    """The expression for one plan: its files and symlinks that a glob or extra file selects."""
    alternatives: list[Any] = []
    if plan.extra_files:
        alternatives.append(["name", sorted(plan.extra_files), "wholename"])
    names, paths = ignore.name_patterns, ignore.path_patterns
    for target in sorted(plan.targets, key=lambda t: t.relative):
        prefix = escape_wildmatch(target.relative) + "/" if target.relative else ""
        globs = ["anyof", *(match_term(prefix + to_wildmatch(g)) for g in sorted(target.globs))]
        ignored = ignore_terms(prefix, names, paths)
        if ignored:
            alternatives.append(["allof", globs, ["not", ["anyof", *ignored]]])
        else:
            alternatives.append(globs)
    return [
        "allof",
        ["anyof", ["type", "f"], ["type", "l"]],
        ["anyof", *alternatives] if alternatives else ["false"],
    ]


def subscription_query(plan: SubscriptionPlan, ignore: IgnoreMatcher) -> dict[str, Any]:
    """The subscribe query for one plan (without `since`, which the reloader adds)."""
    query: dict[str, Any] = {
        "expression": expression(plan, ignore),
        "fields": FIELDS,
        "dedup_results": True,
        "defer_vcs": True,
        "defer": list(DEFERRED_STATES),
    }
    if plan.relative_root:
        query["relative_root"] = plan.relative_root
    return query
