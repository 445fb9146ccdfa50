"""Compiling a subscription plan into the query the daemon evaluates (pure: no I/O).

The expression carries every include glob, extra file and ignore pattern of the plan, so the daemon
sends only what watchreload would have reported itself. Globs are translated to Watchman's
wildmatch from the same tokens that spec.compile_glob matches with, so both read a glob alike.

Git ignore rules go in too, as far as they translate (`gitignore_terms`): they are an
optimisation only, since the reloader filters every result with the rules themselves. Watchman
4.9's wildmatch is git's (`**/` is zero or more directories, a trailing `/**` everything below,
`*` stops at `/`), so a rule carries over with its directory put in front.
"""

from __future__ import annotations

from typing import Any

from watchreload.errors import ConfigError
from watchreload.gitignore import IGNORE_FILE_NAME
from watchreload.reloaders.watchman.plan import GitRules, SubscriptionPlan
from watchreload.spec import GlobToken, IgnoreMatcher, tokenize_glob
from watchreload.vcs import DEFERRED_STATES

# mtime_ns, size and ino: each reported file's signature as the daemon saw it (scan.Signature),
# which a switch to polling compares with (reloader.py).
FIELDS: list[str] = ["name", "exists", "new", "type", "mtime_ns", "size", "ino"]

# The query that finds the ignore files (and nested work trees) below a subscription's directory.
RULE_FILES_EXPRESSION: list[Any] = ["name", [IGNORE_FILE_NAME, ".git"], "basename"]

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


def gitignore_terms(rule_sets: list[GitRules]) -> list[Any]:
    """Terms true for files that these git ignore rules ignore (a subset of them).

    Only for rule sets without a `!` rule (GitIgnoreRules.rules_in_play returns None otherwise):
    then what git ignores is the union of what each rule matches, and a rule that does not
    translate can be left out, the daemon sending a little more. Left out: rules with a backslash
    (escapes, trailing spaces), anchored rules of a file above the subscription that do not
    name its directory literally, and rules the glob tokenizer rejects.
    """
    terms: list[Any] = []
    for rules in rule_sets:
        prefix = escape_wildmatch(rules.directory) + "/" if rules.directory else ""
        for pattern in rules.patterns:
            terms.extend(match_term(glob) for glob in _git_rule_globs(prefix, rules.above, pattern))
    return terms


def _git_rule_globs(prefix: str, above: str, pattern: str) -> list[str]:
    pattern = pattern.rstrip(" ")
    if not pattern or "\\" in pattern or pattern.startswith("!"):
        return []
    directory_only = pattern.endswith("/")
    pattern = pattern.removesuffix("/")
    anchored = "/" in pattern  # a `/` at the start or in the middle: relative to the file's dir
    pattern = pattern.removeprefix("/")
    if anchored and above:
        if any(c in _WILDMATCH_SPECIAL for c in above) or not pattern.startswith(above + "/"):
            return []
        pattern = pattern[len(above) + 1 :]
    if not pattern:
        return []
    try:
        wild = to_wildmatch(pattern)
    except ConfigError:
        return []
    start = prefix if anchored else prefix + "**/"
    below = f"{start}{wild}/**"  # everything in a directory it names
    return [below] if directory_only else [f"{start}{wild}", below]


def expression(
    plan: SubscriptionPlan, ignore: IgnoreMatcher, git_terms: list[Any] | None = None
) -> list[Any]:
    """The expression for one plan: its files and symlinks that a glob or extra file selects.

    `git_terms` (gitignore_terms), when not None, says that git ignore rules apply: files they
    match are left out, and every `.gitignore` is selected whatever the globs.
    """
    alternatives: list[Any] = []
    if plan.extra_files:
        alternatives.append(["name", sorted(plan.extra_files), "wholename"])
    names, paths = ignore.name_patterns, ignore.path_patterns
    for target in sorted(plan.targets, key=lambda t: t.relative):
        prefix = escape_wildmatch(target.relative) + "/" if target.relative else ""
        selected = ["anyof", *(match_term(prefix + to_wildmatch(g)) for g in sorted(target.globs))]
        if git_terms:
            selected = ["allof", selected, ["not", ["anyof", *git_terms]]]
        if git_terms is not None:
            selected = ["anyof", selected, match_term(f"{prefix}**/{IGNORE_FILE_NAME}")]
        ignored = ignore_terms(prefix, names, paths)
        if ignored:
            alternatives.append(["allof", selected, ["not", ["anyof", *ignored]]])
        else:
            alternatives.append(selected)
    return [
        "allof",
        ["anyof", ["type", "f"], ["type", "l"]],
        ["anyof", *alternatives] if alternatives else ["false"],
    ]


def subscription_query(
    plan: SubscriptionPlan, ignore: IgnoreMatcher, git_terms: list[Any] | None = None
) -> dict[str, Any]:
    """The subscribe query for one plan (without `since`, which the reloader adds)."""
    query: dict[str, Any] = {
        "expression": expression(plan, ignore, git_terms),
        "fields": FIELDS,
        "dedup_results": True,
        "defer_vcs": True,
        "defer": list(DEFERRED_STATES),
    }
    if plan.relative_root:
        query["relative_root"] = plan.relative_root
    return query
