"""The expression compiler, without a daemon: globs, extra files and ignores as Watchman terms.

The daemon's answer to these expressions is compared with WatchSpec.matches() in test_reloader.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from watchreload.gitignore import GitIgnoreRules
from watchreload.reloaders.watchman.expression import (
    FIELDS,
    escape_wildmatch,
    expression,
    gitignore_terms,
    ignore_terms,
    match_term,
    subscription_query,
    to_wildmatch,
)
from watchreload.reloaders.watchman.plan import (
    GitRules,
    RootTarget,
    SubscriptionPlan,
    place_git_rules,
)
from watchreload.spec import IgnoreMatcher, glob_matches
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


# -- git ignore rules as daemon terms -------------------------------------------------------------


def term_globs(terms: list[Any]) -> list[str]:
    assert all(t[0] == "match" and t[2] == "wholename" for t in terms)
    return [t[1] for t in terms]


def test_git_rules_of_the_subscribed_directory() -> None:
    rules = GitRules("", "", ("build/", "*.log", "/gen", "a/b", "dist", "docs/**/*.tmp  "))
    assert term_globs(gitignore_terms([rules])) == [
        "**/build/**",
        "**/*.log",
        "**/*.log/**",
        "gen",
        "gen/**",
        "a/b",
        "a/b/**",
        "**/dist",
        "**/dist/**",
        "docs/**/*.tmp",
        "docs/**/*.tmp/**",
    ]


def test_git_rules_of_a_deeper_directory_and_of_one_above() -> None:
    deeper = GitRules("src/pkg", "", ("generated/", "/local.py"))
    assert term_globs(gitignore_terms([deeper])) == [
        "src/pkg/**/generated/**",
        "src/pkg/local.py",
        "src/pkg/local.py/**",
    ]
    # The top .gitignore while src/ is subscribed: unanchored rules apply below src/ as well;
    # anchored ones only where they name src/ literally.
    above = GitRules("", "src", ("*_pb2.py", "/src/gen/", "src/*.tmp", "/other", "*/x", "/src"))
    assert term_globs(gitignore_terms([above])) == [
        "**/*_pb2.py",
        "**/*_pb2.py/**",
        "gen/**",
        "*.tmp",
        "*.tmp/**",
    ]


@pytest.mark.parametrize("pattern", ["\\#notes", "trailing\\ ", "!keep.py", "[unclosed", "/", "  "])
def test_git_rules_that_do_not_translate_are_left_to_the_client(pattern: str) -> None:
    assert gitignore_terms([GitRules("", "", (pattern,))]) == []


def test_git_terms_exclude_globbed_files_but_never_extras_or_rule_files() -> None:
    plan = SubscriptionPlan(
        "/repo",
        targets=[RootTarget(Path("/repo"), "", frozenset({"**/*.py"}))],
        extra_files={"build/mod.py": Path("/repo/build/mod.py")},
    )
    git = gitignore_terms([GitRules("", "", ("build/",))])
    assert expression(plan, IgnoreMatcher(()), git) == [
        "allof",
        FILES_AND_SYMLINKS,
        [
            "anyof",
            ["name", ["build/mod.py"], "wholename"],
            [
                "anyof",
                ["allof", ["anyof", match_term("**/*.py")], ["not", ["anyof", *git]]],
                match_term("**/.gitignore"),
            ],
        ],
    ]
    # Rules that do not translate: the rule files are still selected, nothing is excluded.
    assert expression(plan, IgnoreMatcher(()), [])[2][2] == [
        "anyof",
        ["anyof", match_term("**/*.py")],
        match_term("**/.gitignore"),
    ]


GIT_RULES = {
    ".gitignore": "build/\n*.log\n/gen\ndocs/_build\n*.egg-info/\nsecret_*.py\n"
    "*_pb2.py\nsrc/tmp/\n",
    "src/.gitignore": "generated/\nlocal.py\n/only_here.py\n",
    "build/.gitignore": "!anything\n",  # inside an ignored directory: git never reads it
}
GIT_PATHS = [
    "app.py",
    "build/lib/app.py",
    "src/build/x.py",
    "x.log",
    "src/logs/a.log",
    "gen/api.py",
    "src/gen/api.py",
    "docs/_build/index.py",
    "src/docs/_build/index.py",
    "pkg.egg-info/PKG.py",
    "secret_key.py",
    "src/secret_no.py",
    "api_pb2.py",
    "src/deep/api_pb2.py",
    "src/tmp/t.py",
    "src/generated/models.py",
    "src/local.py",
    "src/sub/local.py",
    "local.py",
    "src/only_here.py",
    "src/sub/only_here.py",
    "scratch/try.py",
    "src/scratch/try.py",
]


def make_git_tree(root: Path) -> Path:
    for name, text in {**GIT_RULES, ".git/info/exclude": "scratch/\n"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for name in GIT_PATHS:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x = 1\n")
    return root


@pytest.mark.parametrize("subscribed", ["", "src"])
def test_daemon_terms_ignore_what_the_rules_ignore(tmp_path: Path, subscribed: str) -> None:
    """For negation-free rules the terms, read with the same wildmatch, are the rules exactly."""
    repo = make_git_tree(tmp_path / "repo")
    directory = repo / subscribed if subscribed else repo
    rules = GitIgnoreRules()
    found = [p for p in directory.rglob(".gitignore")]
    in_play = rules.rules_in_play(directory, found)
    assert in_play is not None
    globs = term_globs(gitignore_terms(place_git_rules(directory, in_play)))
    below = [p for p in GIT_PATHS if (repo / p).is_relative_to(directory)]
    for name in below:
        relative = (repo / name).relative_to(directory).as_posix()
        by_terms = any(glob_matches(g, relative) for g in globs)
        assert by_terms == rules.ignores(repo / name), (name, globs)


def test_a_negation_or_a_nested_work_tree_keeps_the_rules_out_of_the_daemon(tmp_path: Path) -> None:
    repo = make_git_tree(tmp_path / "repo")
    rules = GitIgnoreRules()
    assert rules.rules_in_play(repo, [repo / ".gitignore", repo / "build" / ".gitignore"])
    (repo / "src" / "deep").mkdir(exist_ok=True)
    (repo / "src" / "deep" / ".gitignore").write_text("*.log\n!keep.log\n")
    assert rules.rules_in_play(repo, [repo / "src" / "deep" / ".gitignore"]) is None
    (repo / "vendor" / "lib" / ".git").mkdir(parents=True)
    assert GitIgnoreRules().rules_in_play(repo, [repo / "vendor" / "lib" / ".git"]) is None
    assert GitIgnoreRules().rules_in_play(tmp_path, []) == []  # outside a work tree: no rules
