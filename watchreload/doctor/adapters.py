"""Everything doctor borrows from modules that are being refactored, in one place.

The Watchman backend is becoming a package (watchreload/reloaders/watchman/: expression, plan,
session, reloader) and the settings are moving into one declared table (watchreload/settings.py).
Doctor reaches both only through the functions below, so that re-pointing it after those changes
land is an edit of this file alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from watchreload.spec import DEFAULT_IGNORE_PATTERNS, WatchSpec

logger = logging.getLogger(__name__)

Settings = dict[str, tuple[Any, str]]  # setting name -> (effective value, where it came from)


def required_capabilities() -> tuple[str, ...]:
    from watchreload.reloaders.watchman.session import REQUIRED_CAPABILITIES

    return REQUIRED_CAPABILITIES


def min_version() -> tuple[int, int]:
    from watchreload.reloaders.watchman.session import MIN_VERSION

    return MIN_VERSION


def parse_version(version: str) -> tuple[int, ...]:
    from watchreload.reloaders.watchman.session import parse_version as parse

    return parse(version)


def subscription_expression(root: Path, globs: Sequence[str], spec: WatchSpec) -> list[Any]:
    """The expression WatchmanReloader subscribes with for `root`, relative to `root` (the query
    that uses it sets `relative_root` to root's path below its watch)."""
    from watchreload.reloaders.watchman.expression import expression
    from watchreload.reloaders.watchman.plan import RootTarget, SubscriptionPlan

    plan = SubscriptionPlan(watch_root=str(root))
    plan.targets.append(RootTarget(path=root, relative="", globs=frozenset(globs)))
    return expression(plan, spec.ignore)


def effective_settings(environ: Mapping[str, str], cwd: Path) -> tuple[Settings, Path | None]:
    """Every command-mode setting with its value and source, and the pyproject.toml that holds a
    [tool.watchreload] table (None when none does). Raises WatchreloadError for a bad setting.

    Today this is config.load_config (which validates) plus config's own readers for the sources;
    it becomes a read of the settings table's provenance once watchreload/settings.py lands.
    """
    from watchreload import config

    resolved = config.load_config({"command": ("doctor",)}, environ=environ, cwd=cwd)
    pyproject = config.find_pyproject(cwd)
    from_file = config.read_pyproject(pyproject) if pyproject is not None else {}
    from_env = config.env_settings(environ)
    ignores = resolved.ignore_patterns
    defaults = DEFAULT_IGNORE_PATTERNS
    uses_defaults = ignores[: len(defaults)] == defaults
    values: dict[str, Any] = {
        "watch": [str(root) for root in resolved.roots],
        "glob": list(resolved.include_globs),
        "ignore": list(resolved.ignore_patterns[len(defaults) :] if uses_defaults else ignores),
        "default_ignores": uses_defaults,
        "backend": resolved.backend,
        "debounce": resolved.debounce_ms,
        "debounce_max": resolved.debounce_max_ms,
        "stop_signal": resolved.stop_signal.name,
        "stop_timeout": resolved.stop_timeout_s,
        "poll_interval": resolved.poll_interval_s,
        "watchman_timeout": resolved.watchman_timeout_s,
        "shell": resolved.shell,
        "clear": resolved.clear,
    }
    settings: Settings = {}
    for name, value in values.items():
        if name in from_env:
            source = config.ENV_PREFIX + name.upper()
        elif name in from_file:
            source = f"{resolved.pyproject} {config.PYPROJECT_TABLE}"
        else:
            source = "default"
        settings[name] = (value, source)
    return settings, resolved.pyproject
