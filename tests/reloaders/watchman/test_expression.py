"""The expression compiler, without a daemon: globs, extra files and ignores as Watchman terms.

The daemon's answer to these expressions is compared with WatchSpec.matches() in test_reloader.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from watchreload.reloaders.watchman.expression import (
    FIELDS,
    escape_wildmatch,
    expression,
    ignore_terms,
    match_term,
    subscription_query,
    to_wildmatch,
)
from watchreload.reloaders.watchman.plan import RootTarget, SubscriptionPlan
from watchreload.spec import IgnoreMatcher
from watchreload.vcs import DEFERRED_STATES

FILES_AND_SYMLINKS = ["anyof", ["type", "f"], ["type", "l"]]


def test_to_wildmatch_only_rewrites_inner_double_stars() -> None:
    assert to_wildmatch("**/*.py") == "**/*.py"
    assert to_wildmatch("src/**") == "src/**"
    assert to_wildmatch("a**b.py") == "a*b.py"
    assert to_wildmatch("[*]**x") == "[*]*x"
    assert to_wildmatch("\\**") == "\\**"


@pytest.mark.parametrize(
    "pattern", ["*.py", "?x", "[!ab]c", "[]x]", "a\\[b", "pkg/**/t.html", "a/**", "**"]
)
def test_to_wildmatch_passes_everything_else_through(pattern: str) -> None:
    assert to_wildmatch(pattern) == pattern


def test_escape_wildmatch_escapes_only_special_characters() -> None:
    assert escape_wildmatch("src/app") == "src/app"
    assert escape_wildmatch("a*b?c[d]\\e") == "a\\*b\\?c\\[d]\\\\e"


def test_match_term_includes_dot_files() -> None:
    assert match_term("**/*.py") == ["match", "**/*.py", "wholename", {"includedotfiles": True}]


def test_ignore_terms_prune_below_names_anywhere_and_paths_from_the_root() -> None:
    assert ignore_terms("src/", ("node_modules", "a**b"), ("docs/_build",)) == [
        match_term("src/**/node_modules"),
        match_term("src/**/node_modules/**"),
        match_term("src/**/a*b"),
        match_term("src/**/a*b/**"),
        match_term("src/docs/_build"),
        match_term("src/docs/_build/**"),
    ]
    assert ignore_terms("", (), ()) == []


def plan_of(*targets: RootTarget, extra: dict[str, Path] | None = None) -> SubscriptionPlan:
    return SubscriptionPlan("/w", targets=list(targets), extra_files=dict(extra or {}))


def test_an_empty_plan_selects_nothing() -> None:
    assert expression(plan_of(), IgnoreMatcher(())) == ["allof", FILES_AND_SYMLINKS, ["false"]]


def test_globs_per_target_below_its_escaped_prefix_and_without_ignores() -> None:
    plan = plan_of(
        RootTarget(Path("/w/b*"), "b*", frozenset({"**/*.py", "*.cfg"})),
        RootTarget(Path("/w"), "", frozenset({"*.toml"})),
    )
    assert expression(plan, IgnoreMatcher(())) == [
        "allof",
        FILES_AND_SYMLINKS,
        [
            "anyof",
            ["anyof", match_term("*.toml")],  # targets in order of their relative path
            ["anyof", match_term("b\\*/**/*.py"), match_term("b\\*/*.cfg")],  # globs sorted
        ],
    ]


def test_ignores_apply_to_globs_but_not_to_extra_files() -> None:
    settings = Path("/w/.venv/settings.toml")
    plan = plan_of(
        RootTarget(Path("/w/src"), "src", frozenset({"**/*.py"})),
        extra={".venv/settings.toml": settings, "a.cfg": Path("/w/a.cfg")},
    )
    ignore = IgnoreMatcher((".venv", "docs/_build/**"))
    globs: list[Any] = ["anyof", match_term("src/**/*.py")]
    ignored = ["anyof", *ignore_terms("src/", (".venv",), ("docs/_build/**",))]
    assert expression(plan, ignore) == [
        "allof",
        FILES_AND_SYMLINKS,
        [
            "anyof",
            ["name", [".venv/settings.toml", "a.cfg"], "wholename"],
            ["allof", globs, ["not", ignored]],
        ],
    ]


def test_subscription_query_asks_for_deferred_deduplicated_results() -> None:
    plan = plan_of(RootTarget(Path("/w/src"), "", frozenset({"**/*.py"})))
    ignore = IgnoreMatcher(())
    query = subscription_query(plan, ignore)
    assert query == {
        "expression": expression(plan, ignore),
        "fields": FIELDS,
        "dedup_results": True,
        "defer_vcs": True,
        "defer": list(DEFERRED_STATES),
    }
    plan.relative_root = "src"
    assert subscription_query(plan, ignore)["relative_root"] == "src"
