"""watchreload: restart a program, or tell your code, the moment its source files change."""

from watchreload.autoreload import (
    get_child_arguments,
    restart_with_reloader,
    run_with_reloader,
    trigger_reload,
)
from watchreload.changes import Change, ChangeSet
from watchreload.errors import (
    CommandError,
    ConfigError,
    WatchmanUnavailable,
    WatchPathError,
    WatchreloadError,
)
from watchreload.hooks import autoreload_started, file_changed
from watchreload.modules import iter_all_python_module_files
from watchreload.reloaders import BaseReloader, StatReloader, get_reloader
from watchreload.reloaders.watchman import WatchmanReloader
from watchreload.spec import DEFAULT_IGNORE_PATTERNS, DEFAULT_INCLUDE_GLOBS, WatchSpec

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_IGNORE_PATTERNS",
    "DEFAULT_INCLUDE_GLOBS",
    "BaseReloader",
    "Change",
    "ChangeSet",
    "CommandError",
    "ConfigError",
    "StatReloader",
    "WatchPathError",
    "WatchSpec",
    "WatchmanReloader",
    "WatchmanUnavailable",
    "WatchreloadError",
    "__version__",
    "autoreload_started",
    "file_changed",
    "get_child_arguments",
    "get_reloader",
    "iter_all_python_module_files",
    "restart_with_reloader",
    "run_with_reloader",
    "trigger_reload",
]
