"""get_reloader(): the one place that chooses a backend and explains the choice."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from watchreload.errors import ConfigError, WatchmanUnavailable
from watchreload.mounts import events_unreliable
from watchreload.reloaders.base import BaseReloader
from watchreload.reloaders.stat import StatReloader
from watchreload.settings import (
    BACKEND,
    BACKENDS,
    DEBOUNCE,
    DEBOUNCE_MAX,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_WATCHMAN_TIMEOUT_S,
    GITIGNORE,
    POLL_INTERVAL,
    WATCHMAN_TIMEOUT,
    BackendName,
    Settings,
)

logger = logging.getLogger(__name__)


def _options_from_settings(options: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """`options` with the settings' debounce and ignores where the caller passed none."""
    filled = dict(options)
    if "debounce_ms" not in filled:
        filled["debounce_ms"] = settings.get(DEBOUNCE)
    if "debounce_max_ms" not in filled:
        filled["debounce_max_ms"] = settings.get(DEBOUNCE_MAX)
    if "ignore_patterns" not in filled:
        filled["ignore_patterns"] = settings.ignore_patterns()
    if "gitignore" not in filled:
        filled["gitignore"] = settings.get(GITIGNORE)
    return filled


def get_reloader(
    backend: BackendName | None = None,
    *,
    poll_interval_s: float | None = None,
    watchman_timeout_s: float | None = None,
    roots: Iterable[Path] = (),
    **options: Any,
) -> BaseReloader:
    """Return a reloader for `backend`; its `reason` attribute says why it was chosen.

    What is not passed (the backend, the intervals, `debounce_ms`, `debounce_max_ms`,
    `ignore_patterns`, `gitignore`) comes from the settings: the `WATCHRELOAD_*` environment, then
    `[tool.watchreload]` of the nearest pyproject.toml, then the default (see the README).

    `auto` uses Watchman when it is available and otherwise StatReloader; `reason` says why, for
    the caller to show once (the CLI's start line). It also uses StatReloader when one of `roots`
    is on a file system where file events may not arrive (a Docker Desktop bind mount, NFS; see
    watchreload.mounts).
    `watchman` raises WatchmanUnavailable with the reason instead of falling back.
    `options` go to the reloader (ignore_patterns, gitignore, watch_modules, debounce_ms,
    debounce_max_ms).
    """
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r} is unknown; pass one of {', '.join(BACKENDS)}")
    settings = Settings()
    chosen: BackendName = settings.get(BACKEND) if backend is None else backend
    if poll_interval_s is None:
        poll_interval_s = settings.get(POLL_INTERVAL)
    if watchman_timeout_s is None:
        watchman_timeout_s = settings.get(WATCHMAN_TIMEOUT)
    options = _options_from_settings(options, settings)
    reloader: BaseReloader
    if chosen == "auto":
        for root in roots:
            unreliable = events_unreliable(root)
            if unreliable is not None:
                logger.debug("%s; using StatReloader", unreliable)
                reloader = StatReloader(interval_s=poll_interval_s, **options)
                reloader.reason = unreliable
                return reloader
    if chosen in ("auto", "watchman"):
        from watchreload.reloaders.watchman import WatchmanReloader

        try:
            WatchmanReloader.check_availability(timeout_s=watchman_timeout_s)
        except WatchmanUnavailable as exc:
            if chosen == "watchman":
                raise
            logger.debug("Watchman unavailable, using StatReloader: %s", exc)
            reloader = StatReloader(interval_s=poll_interval_s, **options)
            reloader.reason = f"Watchman unavailable: {exc}"
            return reloader
        # poll_interval_s paces the polling Watchman falls back to while the daemon is down.
        reloader = WatchmanReloader(
            timeout_s=watchman_timeout_s, poll_interval_s=poll_interval_s, **options
        )
        reloader.reason = "requested" if chosen == "watchman" else "Watchman is available"
        return reloader
    reloader = StatReloader(interval_s=poll_interval_s, **options)
    reloader.reason = "requested"
    return reloader


__all__ = [
    "BACKENDS",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_WATCHMAN_TIMEOUT_S",
    "BackendName",
    "BaseReloader",
    "StatReloader",
    "get_reloader",
]
