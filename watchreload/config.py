"""Config: every setting of command mode, resolved and checked.

The settings, their option, environment variable and pyproject.toml key, and the order in which
those are read are declared once in watchreload.settings and listed in the README ("Settings from
the environment and pyproject.toml").

A setting is taken whole from one source: `-i '*.log'` replaces an `ignore` list from the
environment or from pyproject.toml, it does not extend it. The default ignore patterns are added
to whatever `ignore` says unless `default-ignores` is false. Relative `watch` paths in
pyproject.toml are relative to the directory holding that file; on the command line and in the
environment they are relative to the current directory.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchreload.errors import ConfigError, WatchPathError
from watchreload.setting_sources import Settings
from watchreload.settings import (
    AGENT,
    BACKEND,
    CLEAR,
    DEBOUNCE,
    DEBOUNCE_MAX,
    FORWARD_SOCKET,
    GITIGNORE,
    GLOB,
    KEEP_INNER_RELOADER,
    POLL_INTERVAL,
    PRELOAD,
    SCOPE,
    SHELL,
    STOP_SIGNAL,
    STOP_TIMEOUT,
    TTY,
    WATCH,
    WATCHMAN_TIMEOUT,
    BackendName,
    ScopeName,
    TtyMode,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Everything command mode needs, resolved and validated."""

    command: tuple[str, ...]
    roots: tuple[Path, ...]
    include_globs: tuple[str, ...]
    ignore_patterns: tuple[str, ...]
    gitignore: bool
    backend: BackendName
    debounce_ms: float
    debounce_max_ms: float
    stop_signal: signal.Signals
    stop_timeout_s: float
    poll_interval_s: float
    watchman_timeout_s: float
    shell: bool
    clear: bool
    tty: TtyMode
    agent: bool = True
    scope: ScopeName = "imports"
    keep_inner_reloader: bool = False
    preload: bool = False
    forward_socket: str = ""
    verbosity: int = 0  # -v adds one, -q takes one away
    pyproject: Path | None = None  # the file settings were read from, if any


def check_root(raw: str, base: Path) -> Path:
    path = (base / os.path.expanduser(raw)).absolute()
    if not path.exists():
        raise WatchPathError(f"watch path {raw!r} does not exist; pass an existing directory")
    if not path.is_dir():
        raise WatchPathError(
            f"watch path {raw!r} is a file, not a directory; watch the directory that holds it "
            "and narrow the files with setting `glob`"
        )
    return path


def _roots(settings: Settings) -> tuple[Path, ...]:
    paths, origin = settings.resolve(WATCH)
    with origin.blame():
        return tuple(check_root(raw, origin.base) for raw in paths)


def load_config(
    cli: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Resolve every setting (CLI, then environment, then pyproject.toml, then default).

    `cli` maps the settings' names to the values given on the command line, with None (or an
    empty tuple) for an option that was not given; it also holds `command` and `verbosity`.
    """
    settings = Settings(cli, environ=environ, cwd=cwd)
    command = tuple(cli.get("command") or ())
    if not command:
        raise ConfigError(
            "no command given; put the command to run after '--', as in "
            "'watchreload -- python app.py'"
        )
    ignore_patterns = settings.ignore_patterns()
    return Config(
        command=command,
        roots=_roots(settings),
        include_globs=settings.get(GLOB),
        ignore_patterns=ignore_patterns,
        gitignore=settings.get(GITIGNORE),
        backend=settings.get(BACKEND),
        debounce_ms=settings.get(DEBOUNCE),
        debounce_max_ms=settings.get(DEBOUNCE_MAX),
        stop_signal=settings.get(STOP_SIGNAL),
        stop_timeout_s=settings.get(STOP_TIMEOUT),
        poll_interval_s=settings.get(POLL_INTERVAL),
        watchman_timeout_s=settings.get(WATCHMAN_TIMEOUT),
        shell=settings.get(SHELL),
        clear=settings.get(CLEAR),
        tty=settings.get(TTY),
        agent=settings.get(AGENT),
        scope=settings.get(SCOPE),
        keep_inner_reloader=settings.get(KEEP_INNER_RELOADER),
        preload=settings.get(PRELOAD),
        forward_socket=settings.get(FORWARD_SOCKET),
        verbosity=int(cli.get("verbosity") or 0),
        pyproject=settings.pyproject if settings.from_file else None,
    )
