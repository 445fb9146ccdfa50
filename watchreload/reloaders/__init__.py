"""get_reloader(): the one place that chooses a backend and explains the choice."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchreload.errors import ConfigError, WatchmanUnavailable
from watchreload.mounts import events_unreliable
from watchreload.reloaders.base import BaseReloader
from watchreload.reloaders.stat import StatReloader
from watchreload.setting_sources import Settings
from watchreload.settings import (
    BACKEND,
    BACKENDS,
    DEBOUNCE,
    DEBOUNCE_MAX,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_WATCHMAN_TIMEOUT_S,
    FORWARD_SOCKET,
    GITIGNORE,
    POLL_INTERVAL,
    BackendName,
)

if TYPE_CHECKING:
    from watchreload.reloaders.watchman import WatchmanReloader

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
    stat_class: type[StatReloader] = StatReloader,
    watchman_class: type[WatchmanReloader] | None = None,
    forward_socket: str | None = None,
    accept_forwarded: bool = True,
    **options: Any,
) -> BaseReloader:
    """Return a reloader for `backend`; its `reason` attribute says why it was chosen.

    What is not passed (the backend, the intervals, `debounce_ms`, `debounce_max_ms`,
    `ignore_patterns`, `gitignore`) comes from the settings: the `WATCHRELOAD_*` environment, then
    `[tool.watchreload]` of the nearest pyproject.toml, then the default (see the README).

    `auto` uses Watchman when it is available and otherwise StatReloader; `reason` says why, for
    the caller to show once (the CLI's start line). It also uses StatReloader when one of `roots`
    is on a file system where file events may not arrive (a Docker Desktop bind mount, NFS; see
    watchreload.mounts); with the default `stat_class` that is a ForwardedReloader, which takes
    the host's events from `watchreload forward` while one is connected (at `forward_socket`,
    or sockets derived from the roots: watchreload.forward), unless `accept_forwarded` is false.
    `watchman` raises WatchmanUnavailable with the reason instead of falling back.
    `options` go to the reloader (ignore_patterns, gitignore, watch_modules, debounce_ms,
    debounce_max_ms). `stat_class` and `watchman_class` (default: watchreload's) are the classes
    it builds.
    """
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r} is unknown; pass one of {', '.join(BACKENDS)}")
    settings = Settings()
    chosen: BackendName = settings.get(BACKEND) if backend is None else backend
    if poll_interval_s is None:
        poll_interval_s = settings.get(POLL_INTERVAL)
    if watchman_timeout_s is None:
        watchman_timeout_s = settings.watchman_timeout_s()
    options = _options_from_settings(options, settings)
    if chosen == "auto":
        for root in roots:
            unreliable = events_unreliable(root)
            if unreliable is not None:
                logger.debug("%s; using StatReloader", unreliable)
                if stat_class is StatReloader and accept_forwarded:
                    stat_class = _forwarded_class()
                    options["forward_socket"] = (
                        settings.get(FORWARD_SOCKET) if forward_socket is None else forward_socket
                    )
                return _stat_reloader(stat_class, poll_interval_s, options, reason=unreliable)
    if chosen in ("auto", "watchman"):
        return _watchman_or_stat(
            chosen,
            watchman_class,
            stat_class,
            poll_interval_s=poll_interval_s,
            watchman_timeout_s=watchman_timeout_s,
            options=options,
        )
    return _stat_reloader(stat_class, poll_interval_s, options, reason="requested")


def _forwarded_class() -> type[StatReloader]:
    from watchreload.forward.reloader import ForwardedReloader

    return ForwardedReloader


def _stat_reloader(
    stat_class: type[StatReloader], interval_s: float, options: dict[str, Any], *, reason: str
) -> BaseReloader:
    reloader = stat_class(interval_s=interval_s, **options)
    reloader.reason = reason
    return reloader


def _watchman_or_stat(
    chosen: BackendName,
    watchman_class: type[WatchmanReloader] | None,
    stat_class: type[StatReloader],
    *,
    poll_interval_s: float,
    watchman_timeout_s: float,
    options: dict[str, Any],
) -> BaseReloader:
    """Watchman if the daemon answers; otherwise StatReloader for `auto`, WatchmanUnavailable
    for `watchman`."""
    if watchman_class is None:
        from watchreload.reloaders import watchman

        watchman_class = watchman.WatchmanReloader
    try:
        watchman_class.check_availability(timeout_s=watchman_timeout_s)
    except WatchmanUnavailable as exc:
        if chosen == "watchman":
            raise
        logger.debug("Watchman unavailable, using StatReloader: %s", exc)
        reason = f"Watchman unavailable: {exc}"
        return _stat_reloader(stat_class, poll_interval_s, options, reason=reason)
    # poll_interval_s paces the polling Watchman falls back to while the daemon is down.
    reloader = watchman_class(
        timeout_s=watchman_timeout_s, poll_interval_s=poll_interval_s, **options
    )
    reloader.reason = "requested" if chosen == "watchman" else "Watchman is available"
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
