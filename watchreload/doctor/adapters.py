"""What doctor borrows from the Watchman backend and the settings table, in one place."""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from watchreload.spec import WatchSpec

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
    """Every setting with its value and source, and the nearest pyproject.toml (None when there
    is none). Raises WatchreloadError for a bad setting, as the CLI would."""
    from watchreload.setting_sources import Settings as SettingSources
    from watchreload.settings import SETTINGS

    sources = SettingSources(environ=environ, cwd=cwd)
    settings: Settings = {}
    for setting in SETTINGS:
        value, origin = sources.resolve(setting)
        if setting.name == "watch":
            value = [str(origin.base / path) for path in value]
        settings[setting.name] = (
            _plain(value),
            "default" if origin.label.startswith("the default") else origin.label,
        )
    return settings, sources.pyproject


def _plain(value: Any) -> Any:
    """A setting's value as JSON data: tuples as lists, signals by name."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, signal.Signals):
        return value.name
    return value
