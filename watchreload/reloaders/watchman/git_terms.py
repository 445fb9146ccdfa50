"""The git ignore terms of each subscription, from the rule files the daemon finds below it.

The rule files (.gitignore) below a subscribed directory are asked of the daemon with one query;
expression.py translates their rules into terms. They are cached per subscribed directory until
the reloader learns that an ignore file changed (`clear`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from watchreload.reloaders.watchman.expression import RULE_FILES_EXPRESSION, gitignore_terms
from watchreload.reloaders.watchman.plan import SubscriptionPlan, git_rules_below
from watchreload.reloaders.watchman.session import Session
from watchreload.spec import WatchSpec

logger = logging.getLogger(__name__)


class GitTerms:
    """(watch root, relative root) -> the git ignore terms of the subscription there."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], list[Any]] = {}

    def clear(self) -> None:
        self._cache.clear()

    def of(self, session: Session, plan: SubscriptionPlan, spec: WatchSpec) -> list[Any] | None:
        """The subscription's git ignore terms: None without git rules, [] where they do not
        translate (notify_files_changed filters every result with the rules in any case)."""
        rules = spec.gitignore
        if rules is None:
            return None
        key = (plan.watch_root, plan.relative_root)
        subscribed = Path(plan.watch_root, plan.relative_root)
        if key not in self._cache and rules.work_tree(subscribed) is None:
            self._cache[key] = []  # not in a git work tree: no rules, no query
        if key not in self._cache:
            query: dict[str, Any] = {"expression": RULE_FILES_EXPRESSION, "fields": ["name"]}
            if plan.relative_root:
                query["relative_root"] = plan.relative_root
            names = [str(n) for n in session.query("query", plan.watch_root, query)["files"]]
            terms = gitignore_terms(git_rules_below(subscribed, names, spec.ignore, rules))
            logger.debug("git ignore terms for %s: %s", subscribed, terms)
            self._cache[key] = terms
        return self._cache[key]
