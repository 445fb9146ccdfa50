"""Every setting, declared once, and where its value comes from.

The command line's options, the `WATCHRELOAD_*` environment variables, the `[tool.watchreload]`
keys of pyproject.toml, the README's tables and library mode's defaults are all read from
`SETTINGS`. A value is taken whole from the first of these that sets it:

1. the command-line option (or, in library mode, the argument passed to `get_reloader()`);
2. the `WATCHRELOAD_*` environment variable;
3. the `[tool.watchreload]` table of the nearest `pyproject.toml`, looking in the current
   directory and then in each parent, stopping at the first `pyproject.toml` found;
4. the default.

The README lists the settings, their variables and keys. An error names where the bad value came
from ("--debounce: ...", "WATCHRELOAD_DEBOUNCE: ...", "/p/pyproject.toml [tool.watchreload]
debounce: ...").
"""

from __future__ import annotations

import contextlib
import os
import signal
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, cast, get_args

from watchreload.changes import DEFAULT_DEBOUNCE_MAX_MS, DEFAULT_DEBOUNCE_MS
from watchreload.errors import ConfigError, WatchPathError
from watchreload.spec import DEFAULT_IGNORE_PATTERNS, DEFAULT_INCLUDE_GLOBS
from watchreload.values import number, one_of, parse_bool, parse_globs, parse_paths, parse_signal

BackendName = Literal["auto", "watchman", "stat"]
BACKENDS: tuple[str, ...] = get_args(BackendName)
TtyMode = Literal["auto", "never"]
TTY_MODES: tuple[str, ...] = get_args(TtyMode)
ScopeName = Literal["imports", "tree"]
SCOPES: tuple[str, ...] = get_args(ScopeName)

DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_WATCHMAN_TIMEOUT_S = 5.0
DEFAULT_STOP_TIMEOUT_S = 5.0
ENV_PREFIX = "WATCHRELOAD_"
PYPROJECT_TABLE = "[tool.watchreload]"

T = TypeVar("T")


parse_backend = cast("Callable[[object], BackendName]", one_of("backend", BACKENDS))
parse_tty = cast("Callable[[object], TtyMode]", one_of("tty mode", TTY_MODES))
parse_scope = cast("Callable[[object], ScopeName]", one_of("scope", SCOPES))


# -- the table ---------------------------------------------------------------------------------

Kind = Literal["text", "number", "choice", "list", "switch"]


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting: its names in every source, its default, its parser and its help."""

    key: str  # as in pyproject.toml; the option is --KEY, the variable WATCHRELOAD_KEY (upper, _)
    parse: Callable[[object], T]
    default: object  # written as a user would write it; the default value is parse(default)
    help: str  # for --help and the README, where 'quoted' text is shown as code
    kind: Kind = "text"
    short_flag: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    env_separator: str = ","  # between the items of a list in the environment
    library: bool = False  # library mode (get_reloader, run_with_reloader) reads it too

    @property
    def name(self) -> str:
        """The Python name: the click parameter, the Config field's stem."""
        return self.key.replace("-", "_")

    @property
    def flag(self) -> str:
        return "--" + self.key

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def default_value(self) -> T:
        return self.parse(self.default)


WATCH: Setting[tuple[str, ...]] = Setting(
    "watch",
    parse_paths,
    (".",),
    "Directory to watch; repeat for more.",
    kind="list",
    short_flag="-w",
    metavar="PATH",
    env_separator=os.pathsep,
)
GLOB: Setting[tuple[str, ...]] = Setting(
    "glob",
    parse_globs,
    DEFAULT_INCLUDE_GLOBS,
    "Files to watch, a wildmatch glob relative to each watched directory ('**' crosses "
    "directories); repeat for more.",
    kind="list",
    short_flag="-g",
    metavar="GLOB",
)
IGNORE: Setting[tuple[str, ...]] = Setting(
    "ignore",
    parse_globs,
    (),
    "Extra pattern to ignore: a name ('build', '*.log') ignored at any depth, or a path glob "
    "('docs/_build/**'); repeat for more. Added to the default ignores; replaces an ignore list "
    "from WATCHRELOAD_IGNORE or pyproject.toml.",
    kind="list",
    short_flag="-i",
    metavar="PATTERN",
    library=True,
)
DEFAULT_IGNORES: Setting[bool] = Setting(
    "default-ignores",
    parse_bool,
    True,
    "Ignore VCS directories, '__pycache__', 'node_modules', virtualenvs, tool caches and "
    "editor swap files.",
    kind="switch",
    library=True,
)
GITIGNORE: Setting[bool] = Setting(
    "gitignore",
    parse_bool,
    True,
    "Ignore what the project's git ignore rules ignore ('.gitignore' files, "
    "'.git/info/exclude'), even where a glob includes it.",
    kind="switch",
    library=True,
)
BACKEND: Setting[BackendName] = Setting(
    "backend",
    parse_backend,
    "auto",
    "How to find changes: Watchman, stat polling, or auto (Watchman when available, otherwise "
    "stat).",
    kind="choice",
    choices=BACKENDS,
    library=True,
)
DEBOUNCE: Setting[float] = Setting(
    "debounce",
    number("debounce", "milliseconds"),
    DEFAULT_DEBOUNCE_MS,
    "Quiet period that closes a batch of changes: one restart per batch.",
    kind="number",
    metavar="MS",
    library=True,
)
DEBOUNCE_MAX: Setting[float] = Setting(
    "debounce-max",
    number("debounce cap", "milliseconds"),
    DEFAULT_DEBOUNCE_MAX_MS,
    "Restart at the latest this long after a batch's first change, even if changes keep coming.",
    kind="number",
    metavar="MS",
    library=True,
)
STOP_SIGNAL: Setting[signal.Signals] = Setting(
    "stop-signal",
    parse_signal,
    "SIGTERM",
    "Signal that asks the command's process group to stop (TERM, SIGTERM and 15 all work).",
    metavar="SIGNAL",
)
STOP_TIMEOUT: Setting[float] = Setting(
    "stop-timeout",
    number("stop timeout", "seconds"),
    DEFAULT_STOP_TIMEOUT_S,
    "How long to wait after the stop signal before SIGKILL of the command's process group.",
    kind="number",
    metavar="SECONDS",
)
POLL_INTERVAL: Setting[float] = Setting(
    "poll-interval",
    number("poll interval", "seconds", allow_zero=False),
    DEFAULT_POLL_INTERVAL_S,
    "How often the stat backend scans.",
    kind="number",
    metavar="SECONDS",
    library=True,
)
WATCHMAN_TIMEOUT: Setting[float] = Setting(
    "watchman-timeout",
    number("Watchman timeout", "seconds", allow_zero=False),
    DEFAULT_WATCHMAN_TIMEOUT_S,
    "How long to wait for the Watchman daemon to answer.",
    kind="number",
    metavar="SECONDS",
    library=True,
)
SHELL: Setting[bool] = Setting(
    "shell",
    parse_bool,
    False,
    "Run the command through '/bin/sh -c' (its words joined by spaces).",
    kind="switch",
)
CLEAR: Setting[bool] = Setting(
    "clear", parse_bool, False, "Clear the terminal before each restart.", kind="switch"
)
TTY: Setting[TtyMode] = Setting(
    "tty",
    parse_tty,
    "auto",
    "auto: when watchreload runs in the foreground of a terminal, lend it to the command as a "
    "shell does (input(), pdb and Ctrl-C reach the command; Ctrl-C ends both); never: the "
    "terminal stays with watchreload.",
    kind="choice",
    choices=TTY_MODES,
)
# The child agent (watchreload/agent/): what a Python command imports, where it listens.
AGENT: Setting[bool] = Setting(
    "agent",
    parse_bool,
    True,
    "Have a Python command's processes report what they import and where they listen (a "
    "'sitecustomize' on the child's PYTHONPATH); a command that is not Python runs as it is.",
    kind="switch",
)
SCOPE: Setting[ScopeName] = Setting(
    "scope",
    parse_scope,
    "imports",
    "Which '.py' changes restart a Python command the agent reports on: a module it imported, "
    "or a '.py' file added or removed next to one (imports), or any (tree). Other globs always "
    "restart.",
    kind="choice",
    choices=SCOPES,
)
KEEP_INNER_RELOADER: Setting[bool] = Setting(
    "keep-inner-reloader",
    parse_bool,
    False,
    "Leave the command's own reloader on (Django runserver, flask run, uvicorn --reload); by "
    "default watchreload turns it off and says so.",
    kind="switch",
)

SETTINGS: tuple[Setting[Any], ...] = (
    WATCH,
    GLOB,
    IGNORE,
    DEFAULT_IGNORES,
    GITIGNORE,
    BACKEND,
    DEBOUNCE,
    DEBOUNCE_MAX,
    STOP_SIGNAL,
    STOP_TIMEOUT,
    POLL_INTERVAL,
    WATCHMAN_TIMEOUT,
    SHELL,
    CLEAR,
    TTY,
    AGENT,
    SCOPE,
    KEEP_INNER_RELOADER,
)
_BY_KEY = {setting.key: setting for setting in SETTINGS}
DJANGO_WATCHMAN_TIMEOUT_ENV = "DJANGO_WATCHMAN_TIMEOUT"  # Django's, read by watchman_timeout_s()


# -- where values come from ----------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """Where a value came from: its error messages start with `label`, and a relative path in it
    is relative to `base`."""

    label: str
    base: Path

    @contextlib.contextmanager
    def blame(self) -> Iterator[None]:
        """Prefix the label to a ConfigError or WatchPathError raised inside, keeping its class."""
        try:
            yield
        except (ConfigError, WatchPathError) as exc:
            raise type(exc)(f"{self.label}: {exc}") from exc


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in `start` or one of its parents."""
    candidates = (directory / "pyproject.toml" for directory in (start, *start.parents))
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def read_pyproject(path: Path) -> dict[str, object]:
    """The `[tool.watchreload]` table of `path`, by setting key (`debounce_max` read as
    `debounce-max`); unknown keys and values of the wrong shape are errors."""
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
    values: dict[str, object] = {}
    for written_key, value in table.items():
        setting = _BY_KEY.get(written_key.replace("_", "-"))
        if setting is None:
            raise ConfigError(
                f"{path}: {PYPROJECT_TABLE} key {written_key!r} is unknown; use one of "
                f"{', '.join(_BY_KEY)}"
            )
        if setting.kind == "list":
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(
                    f"{path}: {PYPROJECT_TABLE} {written_key} = {value!r} is invalid; pass a "
                    "list of strings"
                )
        values[setting.key] = value
    return values


def _split_env(setting: Setting[Any], raw: str) -> object:
    if setting.kind != "list":
        return raw
    if setting.env_separator == os.pathsep:  # paths: spaces may belong to a name
        return [item for item in raw.split(os.pathsep) if item]
    return [item.strip() for item in raw.split(setting.env_separator) if item.strip()]


class Settings:
    """The values given for the settings, from the command line (or explicit arguments), the
    environment and the nearest pyproject.toml; each is parsed when it is asked for.

    `given` maps a setting's name to its value, None (or an empty tuple) meaning not given.
    """

    def __init__(
        self,
        given: Mapping[str, object] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.given = given or {}
        self.environ = os.environ if environ is None else environ
        self.cwd = Path.cwd() if cwd is None else cwd
        self.pyproject = find_pyproject(self.cwd)
        self.from_file = read_pyproject(self.pyproject) if self.pyproject is not None else {}

    def raw(self, setting: Setting[Any]) -> tuple[object, Origin]:
        """The value as written, and where it came from (the default's origin is 'default')."""
        value = self.given.get(setting.name)
        if value is not None and value != ():
            return value, Origin(setting.flag, self.cwd)
        env_value = self.environ.get(setting.env_var)
        if env_value is not None:
            return _split_env(setting, env_value), Origin(setting.env_var, self.cwd)
        if self.pyproject is not None and setting.key in self.from_file:
            label = f"{self.pyproject} {PYPROJECT_TABLE} {setting.key}"
            return self.from_file[setting.key], Origin(label, self.pyproject.parent)
        return setting.default, Origin(f"the default {setting.key}", self.cwd)

    def resolve(self, setting: Setting[T]) -> tuple[T, Origin]:
        value, origin = self.raw(setting)
        with origin.blame():
            return setting.parse(value), origin

    def get(self, setting: Setting[T]) -> T:
        return self.resolve(setting)[0]

    def ignore_patterns(self) -> tuple[str, ...]:
        """The default ignores (unless `default-ignores` is false), then `ignore`."""
        defaults = DEFAULT_IGNORE_PATTERNS if self.get(DEFAULT_IGNORES) else ()
        return (*defaults, *self.get(IGNORE))

    def watchman_timeout_s(self) -> float:
        """`watchman-timeout`, where Django's DJANGO_WATCHMAN_TIMEOUT stands in for every source
        but an explicit argument when it is set (Django's WatchmanReloader reads it)."""
        raw = self.environ.get(DJANGO_WATCHMAN_TIMEOUT_ENV)
        if raw is None or self.given.get(WATCHMAN_TIMEOUT.name) is not None:
            return self.get(WATCHMAN_TIMEOUT)
        with Origin(DJANGO_WATCHMAN_TIMEOUT_ENV, self.cwd).blame():
            return WATCHMAN_TIMEOUT.parse(raw)
