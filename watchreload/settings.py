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

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast, get_args

from watchreload.changes import DEFAULT_DEBOUNCE_MAX_MS, DEFAULT_DEBOUNCE_MS
from watchreload.spec import DEFAULT_INCLUDE_GLOBS
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
    "Quiet period that closes a batch of changes: one restart per batch. The default is "
    "Watchman's own settle, so that backend adds no wait of its own.",
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
PRELOAD: Setting[bool] = Setting(
    "preload",
    parse_bool,
    False,
    "Start each restart of a Python command from a template process that has already imported "
    "the standard-library and installed modules the previous run imported (fork, tens of "
    "milliseconds); plain exec whenever the template cannot serve, said on the restart line.",
    kind="switch",
)
# Host events forwarded into a container (watchreload/forward/).
FORWARD_SOCKET: Setting[str] = Setting(
    "forward-socket",
    str,
    "",
    "Unix socket where watchreload, polling a mount whose events may not arrive, takes events "
    "forwarded by 'watchreload forward' (through 'watchreload receive'); empty: one per watched "
    "directory in a private runtime directory.",
    metavar="PATH",
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
    PRELOAD,
    FORWARD_SOCKET,
)
BY_KEY = {setting.key: setting for setting in SETTINGS}
