"""Config: every setting of command mode, where it comes from, and how it is checked.

Each setting is taken from the first of these that sets it:

1. the command-line option (`--debounce 100`);
2. the `WATCHRELOAD_*` environment variable (`WATCHRELOAD_DEBOUNCE=100`);
3. the `[tool.watchreload]` table of the nearest `pyproject.toml`, found by looking in the current
   directory and then in each parent directory, stopping at the first `pyproject.toml` found
   (`debounce = 100`);
4. the default.

A setting is taken whole from one source: `-i '*.log'` replaces an `ignore` list from the
environment or from pyproject.toml, it does not extend it. The default ignore patterns (VCS
directories, `__pycache__`, `node_modules`, virtual environments, tool caches, editor swap files)
are added to whatever `ignore` says unless `default-ignores` is false (`--no-default-ignores`,
`WATCHRELOAD_DEFAULT_IGNORES=0`, `default-ignores = false`).

| option                   | environment variable           | pyproject.toml key        | default  |
|--------------------------|--------------------------------|---------------------------|----------|
| `-w/--watch PATH`        | `WATCHRELOAD_WATCH` (`a:b`)    | `watch = ["src"]`         | `.`      |
| `-g/--glob GLOB`         | `WATCHRELOAD_GLOB` (`a,b`)     | `glob = ["**/*.py"]`      | `**/*.py`|
| `-i/--ignore PATTERN`    | `WATCHRELOAD_IGNORE` (`a,b`)   | `ignore = ["docs/_build"]`| none     |
| `--[no-]default-ignores` | `WATCHRELOAD_DEFAULT_IGNORES`  | `default-ignores = true`  | on       |
| `--backend NAME`         | `WATCHRELOAD_BACKEND`          | `backend = "auto"`        | `auto`   |
| `--debounce MS`          | `WATCHRELOAD_DEBOUNCE`         | `debounce = 50`           | 50 ms    |
| `--debounce-max MS`      | `WATCHRELOAD_DEBOUNCE_MAX`     | `debounce-max = 2000`     | 2000 ms  |
| `--stop-signal SIGNAL`   | `WATCHRELOAD_STOP_SIGNAL`      | `stop-signal = "SIGTERM"` | SIGTERM  |
| `--stop-timeout SECONDS` | `WATCHRELOAD_STOP_TIMEOUT`     | `stop-timeout = 5`        | 5 s      |
| `--poll-interval SECONDS`| `WATCHRELOAD_POLL_INTERVAL`    | `poll-interval = 1.0`     | 1.0 s    |
| `--watchman-timeout SEC` | `WATCHRELOAD_WATCHMAN_TIMEOUT` | `watchman-timeout = 5`    | 5 s      |
| `--[no-]shell`           | `WATCHRELOAD_SHELL`            | `shell = false`           | off      |
| `--[no-]clear`           | `WATCHRELOAD_CLEAR`            | `clear = false`           | off      |

`-v/-q` and the command itself come only from the command line.

Relative `watch` paths in pyproject.toml are relative to the directory holding that file; on the
command line and in the environment they are relative to the current directory. Booleans in the
environment are `1/0`, `true/false`, `yes/no` or `on/off`. pyproject.toml keys may be written with
`-` or `_`; an unknown key is an error (a typo should not be silently ignored), an unknown
`WATCHRELOAD_*` variable is not (the child gets `WATCHRELOAD_CHANGES`, for instance).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from watchreload.changes import DEFAULT_DEBOUNCE_MAX_MS, DEFAULT_DEBOUNCE_MS
from watchreload.errors import ConfigError, WatchPathError
from watchreload.reloaders import (
    BACKENDS,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_WATCHMAN_TIMEOUT_S,
    BackendName,
)
from watchreload.spec import DEFAULT_IGNORE_PATTERNS, DEFAULT_INCLUDE_GLOBS, compile_glob

logger = logging.getLogger(__name__)

DEFAULT_STOP_SIGNAL = signal.SIGTERM
DEFAULT_STOP_TIMEOUT_S = 5.0
ENV_PREFIX = "WATCHRELOAD_"
PYPROJECT_TABLE = "[tool.watchreload]"

T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    """Everything command mode needs, resolved and validated."""

    command: tuple[str, ...]
    roots: tuple[Path, ...] = (Path("."),)
    include_globs: tuple[str, ...] = DEFAULT_INCLUDE_GLOBS
    ignore_patterns: tuple[str, ...] = DEFAULT_IGNORE_PATTERNS
    backend: BackendName = "auto"
    debounce_ms: float = DEFAULT_DEBOUNCE_MS
    debounce_max_ms: float = DEFAULT_DEBOUNCE_MAX_MS
    stop_signal: signal.Signals = DEFAULT_STOP_SIGNAL
    stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    watchman_timeout_s: float = DEFAULT_WATCHMAN_TIMEOUT_S
    shell: bool = False
    clear: bool = False
    verbosity: int = 0  # -v adds one, -q takes one away
    pyproject: Path | None = None  # the file settings were read from, if any


# -- parsing one value -----------------------------------------------------------------------


def parse_signal(value: object, where: str) -> signal.Signals:
    """Accept `TERM`, `SIGTERM`, `sigterm`, `15` (or the int 15)."""
    text = str(value).strip()
    try:
        if isinstance(value, int) or text.isdigit():
            return signal.Signals(int(text))
        name = text.upper()
        return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"{where}: stop signal {value!r} is unknown; pass a name such as SIGTERM, SIGINT "
            "or SIGHUP (TERM and 15 also work)"
        ) from exc


def parse_number(
    value: object, where: str, what: str, unit: str, *, allow_zero: bool = True
) -> float:
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = math.nan
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "above 0"
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        raise ConfigError(f"{where}: {what} {shown} is invalid; pass a number of {unit} {bound}")
    return number


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{where}: {value!r} is not a boolean; pass true or false (or 1 or 0)")


def parse_backend(value: object, where: str) -> BackendName:
    text = str(value).strip().lower()
    if text not in BACKENDS:
        raise ConfigError(
            f"{where}: backend {value!r} is unknown; pass one of {', '.join(BACKENDS)}"
        )
    return cast(BackendName, text)


def parse_globs(value: Sequence[str], where: str) -> tuple[str, ...]:
    for pattern in value:
        try:
            compile_glob(pattern)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return tuple(value)


def check_root(raw: str, base: Path, where: str) -> Path:
    path = (base / os.path.expanduser(raw)).absolute()
    if not path.exists():
        raise WatchPathError(
            f"{where}: watch path {raw!r} does not exist; pass an existing directory"
        )
    if not path.is_dir():
        raise WatchPathError(
            f"{where}: watch path {raw!r} is a file, not a directory; watch the directory that "
            "holds it and narrow with --glob"
        )
    return path


# -- where values come from ------------------------------------------------------------------


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in `start` or one of its parents."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


# pyproject key -> the CLI's parameter name (also the env var's suffix, upper-cased)
SETTINGS: dict[str, str] = {
    "watch": "watch",
    "glob": "glob",
    "ignore": "ignore",
    "default-ignores": "default_ignores",
    "backend": "backend",
    "debounce": "debounce",
    "debounce-max": "debounce_max",
    "stop-signal": "stop_signal",
    "stop-timeout": "stop_timeout",
    "poll-interval": "poll_interval",
    "watchman-timeout": "watchman_timeout",
    "shell": "shell",
    "clear": "clear",
}
LIST_SETTINGS = frozenset({"watch", "glob", "ignore"})


def read_pyproject(path: Path) -> dict[str, Any]:
    """The `[tool.watchreload]` table of `path`, with keys normalised to the CLI's names."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix the file") from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path} ({exc.strerror or exc}); fix its permissions"
        ) from exc
    tool = data.get("tool", {})
    table = tool.get("watchreload", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {PYPROJECT_TABLE} must be a table; see the README for its keys")
    settings: dict[str, Any] = {}
    for key, value in table.items():
        name = SETTINGS.get(key.replace("_", "-"))
        if name is None:
            raise ConfigError(
                f"{path}: {PYPROJECT_TABLE} key {key!r} is unknown; use one of "
                f"{', '.join(SETTINGS)}"
            )
        if name in LIST_SETTINGS:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(
                    f"{path}: {PYPROJECT_TABLE} {key} = {value!r} is invalid; pass a list of "
                    "strings"
                )
        settings[name] = value
    return settings


def env_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for name in SETTINGS.values():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        if name == "watch":
            settings[name] = [p for p in raw.split(os.pathsep) if p]
        elif name in LIST_SETTINGS:
            settings[name] = [p.strip() for p in raw.split(",") if p.strip()]
        else:
            settings[name] = raw
    return settings


def _describe_cli(name: str) -> str:
    return "--" + name.replace("_", "-")


def load_config(
    cli: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Resolve every setting (CLI, then environment, then pyproject.toml, then default).

    `cli` maps the CLI's parameter names to values, with None (or an empty tuple) for an option
    that was not given; it also holds `command` and `verbosity`.
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    pyproject = find_pyproject(cwd)
    from_file = read_pyproject(pyproject) if pyproject is not None else {}
    from_env = env_settings(environ)

    def pick(name: str, parse: Callable[[Any, str], T], default: T) -> T:
        value = cli.get(name)
        if value is not None and value != ():
            return parse(value, _describe_cli(name))
        if name in from_env:
            return parse(from_env[name], ENV_PREFIX + name.upper())
        if name in from_file:
            key = name.replace("_", "-")
            return parse(from_file[name], f"{pyproject} {PYPROJECT_TABLE} {key}")
        return default

    def number(what: str, unit: str, allow_zero: bool = True) -> Callable[[Any, str], float]:
        return lambda v, where: parse_number(v, where, what, unit, allow_zero=allow_zero)

    def roots(value: Sequence[str], where: str) -> tuple[Path, ...]:
        from_file = pyproject is not None and where.startswith(str(pyproject))
        base = pyproject.parent if pyproject is not None and from_file else cwd
        if not value:
            raise ConfigError(f"{where}: no watch path given; pass at least one directory")
        return tuple(check_root(raw, base, where) for raw in value)

    command = tuple(cli.get("command") or ())
    if not command:
        raise ConfigError(
            "no command given; put the command to run after '--', as in "
            "'watchreload -- python app.py'"
        )
    use_default_ignores = pick("default_ignores", parse_bool, True)
    no_patterns: tuple[str, ...] = ()
    extra_ignores = pick("ignore", parse_globs, no_patterns)
    ignore_patterns = (*(DEFAULT_IGNORE_PATTERNS if use_default_ignores else ()), *extra_ignores)
    return Config(
        command=command,
        roots=pick("watch", roots, (cwd.absolute(),)),
        include_globs=pick("glob", parse_globs, DEFAULT_INCLUDE_GLOBS),
        ignore_patterns=ignore_patterns,
        backend=pick("backend", parse_backend, "auto"),
        debounce_ms=pick(
            "debounce", number("debounce", "milliseconds"), float(DEFAULT_DEBOUNCE_MS)
        ),
        debounce_max_ms=pick(
            "debounce_max", number("debounce cap", "milliseconds"), float(DEFAULT_DEBOUNCE_MAX_MS)
        ),
        stop_signal=pick("stop_signal", parse_signal, DEFAULT_STOP_SIGNAL),
        stop_timeout_s=pick(
            "stop_timeout", number("stop timeout", "seconds"), DEFAULT_STOP_TIMEOUT_S
        ),
        poll_interval_s=pick(
            "poll_interval",
            number("poll interval", "seconds", allow_zero=False),
            DEFAULT_POLL_INTERVAL_S,
        ),
        watchman_timeout_s=pick(
            "watchman_timeout",
            number("Watchman timeout", "seconds", allow_zero=False),
            DEFAULT_WATCHMAN_TIMEOUT_S,
        ),
        shell=pick("shell", parse_bool, False),
        clear=pick("clear", parse_bool, False),
        verbosity=int(cli.get("verbosity") or 0),
        pyproject=pyproject if from_file else None,
    )
