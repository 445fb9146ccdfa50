"""Library mode, and a drop-in for `django.utils.autoreload`, without Django.

Every public name of Django 5.2's module is here with the same meaning (docs/django.md has the
table, and the few differences). `run_with_reloader(main)` re-runs the program as a child marked
by `DJANGO_AUTORELOAD_ENV` (`WATCHRELOAD_RUN_MAIN`, so that a Django project's own runserver and
watchreload's library mode do not take each other's children for their own), and runs it again for
as long as the child exits with code 3. The child runs `main` in a thread (`start_django()`) and
the reloader in its main thread (`reloader.run()`); a debounced batch of changes ends it with exit
code 3 (`trigger_reload()`).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from watchreload.errors import EXIT_ERROR, ScriptNotFound, WatchmanUnavailable
from watchreload.hooks import autoreload_started, file_changed
from watchreload.modules import (
    _error_files,
    iter_all_python_module_files,
    iter_modules_and_files,
    sys_path_directories,
)
from watchreload.process import READY_TIMEOUT_S, STOP_TIMEOUT_S, ChildProcess, signals_handled
from watchreload.reloaders import BackendName, BaseReloader, StatReloader
from watchreload.reloaders import get_reloader as choose_reloader
from watchreload.reloaders.base import apps_pending
from watchreload.reloaders.watchman import WatchmanReloader

logger = logging.getLogger(__name__)

# Django's is "RUN_MAIN"; watchreload's marker has a name of its own (see the module docstring).
RUN_MAIN_ENV = "WATCHRELOAD_RUN_MAIN"
DJANGO_AUTORELOAD_ENV = RUN_MAIN_ENV
RELOAD_EXIT_CODE = 3

# The last exception check_errors() saw, as sys.exc_info() (Django's module global).
_exception: tuple[type[BaseException], BaseException, TracebackType | None] | None = None


def check_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `func` so that the file behind an exception it raises is watched (fixing it reloads)
    and the exception kept for `raise_last_exception()`; then re-raise it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _exception
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            _exception = (type(exc), exc, exc.__traceback__)
            filename = getattr(exc, "filename", None)
            if filename is None:
                frames = traceback.extract_tb(exc.__traceback__)
                filename = frames[-1].filename if frames else None
            if filename and filename not in _error_files:
                _error_files.append(filename)
            raise

    return wrapper


def raise_last_exception() -> None:
    """Raise the exception check_errors() last saw, if any (runserver calls it at start)."""
    if _exception is not None:
        raise _exception[1]


def ensure_echo_on() -> None:
    """Turn the terminal's echo back on; a debugger such as pdb may have left it off."""
    try:
        import termios
    except ImportError:  # Windows
        return
    if not sys.stdin or not sys.stdin.isatty():
        return
    attributes = termios.tcgetattr(sys.stdin)
    if not attributes[3] & termios.ECHO:
        attributes[3] |= termios.ECHO
        # A background process group would be stopped by SIGTTOU for changing the terminal.
        old_handler = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            termios.tcsetattr(sys.stdin, termios.TCSANOW, attributes)
        finally:
            signal.signal(signal.SIGTTOU, old_handler)


@functools.lru_cache(maxsize=1)
def common_roots(paths: frozenset[Path]) -> tuple[Path, ...]:
    """The fewest directories that contain every one of `paths` (Django's, after Werkzeug's)."""
    tree: dict[str, Any] = {}
    for parts in sorted((path.parts for path in paths), key=len, reverse=True):
        node = tree
        for part in parts:
            node = node.setdefault(part, {})
        node.clear()  # a path contains everything below it

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> Iterator[Path]:
        for part, child in node.items():
            yield from walk(child, (*path, part))
        if not node:
            yield Path(*path)

    return tuple(walk(tree, ()))


def get_child_arguments() -> list[str | os.PathLike[str]]:
    """The command line that runs this program again: `-W`/`-X` options, `-m pkg` or the script.

    As Django's, with its Windows fallbacks: a `NAME.exe` or `NAME-script.py` beside a missing
    `sys.argv[0]` (console-script launchers) is run instead.
    """
    import __main__

    script = Path(sys.argv[0])
    exe_entrypoint = script.with_suffix(".exe")
    args: list[str | os.PathLike[str]] = [
        sys.executable,
        *(f"-W{option}" for option in sys.warnoptions),
    ]
    args += [
        f"-X{key}" if value is True else f"-X{key}={value}"
        for key, value in getattr(sys, "_xoptions", {}).items()
    ]
    main_spec = getattr(__main__, "__spec__", None)
    if main_spec is not None and not exe_entrypoint.exists():
        # `python -m pkg` runs pkg.__main__; re-run the package, not its __main__ module.
        is_package_main = main_spec.name == "__main__" or main_spec.name.endswith(".__main__")
        name = main_spec.parent if is_package_main and main_spec.parent else main_spec.name
        return [*args, "-m", name, *sys.argv[1:]]
    if not script.exists():
        if exe_entrypoint.exists():
            return [exe_entrypoint, *sys.argv[1:]]
        script_entrypoint = script.with_name(f"{script.name}-script.py")
        if script_entrypoint.exists():
            return [*args, script_entrypoint, *sys.argv[1:]]
        raise ScriptNotFound(
            f"Script {script} does not exist. watchreload cannot run it again: start the "
            "program as 'python SCRIPT' or 'python -m MODULE'"
        )
    return [*args, *sys.argv]


def trigger_reload(filename: object) -> None:
    """End this child with exit code 3 so that the parent starts a fresh one."""
    logger.info("%s changed, reloading.", filename)
    sys.exit(RELOAD_EXIT_CODE)


def restart_with_reloader() -> int:
    """Run the program as a child until it exits with anything but 3; return that exit code."""
    env = {**os.environ, DJANGO_AUTORELOAD_ENV: "true"}
    args = [os.fspath(arg) for arg in get_child_arguments()]
    while True:
        code = _run_child(ChildProcess(args, env=env, own_group=False, close_fds=False))
        if code != RELOAD_EXIT_CODE:
            return code


def _run_child(child: ChildProcess) -> int:
    """Run one child. Ctrl-C reaches the child through the terminal; SIGTERM is passed on."""
    child.start()
    with signals_handled({signal.SIGTERM: child.send_signal}):
        try:
            return child.wait()
        except KeyboardInterrupt:
            # The child got the same SIGINT from the terminal; give it time to finish.
            code = child.stop(None, STOP_TIMEOUT_S)
            return EXIT_ERROR if code is None else code


def get_reloader(backend: BackendName | None = None, **options: Any) -> BaseReloader:
    """Django's get_reloader(): Watchman when it is available, else StatReloader.

    Called with no arguments it reads the settings (`WATCHRELOAD_*`, then `[tool.watchreload]`);
    `backend` and `options` are those of `watchreload.reloaders.get_reloader()`. The classes are
    this module's `WatchmanReloader` and `StatReloader`, looked up at each call as Django's are.
    """
    return choose_reloader(
        backend, stat_class=StatReloader, watchman_class=WatchmanReloader, **options
    )


def start_django(
    reloader: BaseReloader, main_func: Callable[..., Any], *args: Any, **kwargs: Any
) -> None:
    """Run `main_func` in a daemon thread named `django-main-thread` (Django's name) and the
    reloader here (`reloader.run()`), until the reloader ends the process (exit code 3) or is
    stopped."""
    ensure_echo_on()
    main_func = check_errors(main_func)
    main_thread = threading.Thread(
        target=main_func, args=args, kwargs=kwargs, name="django-main-thread"
    )
    main_thread.daemon = True
    if isinstance(reloader, BaseReloader) and not apps_pending():
        # watchreload's reloaders watch before the program starts, so that no edit from its first
        # moment is missed. With Django's app registry still loading they wait for it in run()
        # first, as Django's do: autoreload_started receivers expect the apps to be ready.
        reloader.start()
        if not reloader.wait_until_ready(READY_TIMEOUT_S) and reloader.error is None:
            logger.warning(
                "the %s watcher is still not ready after %gs; starting the program anyway",
                reloader.name,
                READY_TIMEOUT_S,
            )
    main_thread.start()
    while not reloader.should_stop:
        reloader.run(main_thread)


def run_with_reloader(main_func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run `main_func(*args, **kwargs)` and restart the whole program when a source file changes.

    The backend, its intervals, the debounce and the ignores come from the settings, as for
    get_reloader(): `WATCHRELOAD_*` variables, then `[tool.watchreload]` of the nearest
    pyproject.toml.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            reloader = get_reloader()
            reason = getattr(reloader, "reason", "")
            logger.info(
                "Watching for file changes with %s%s",
                type(reloader).__name__,
                f" ({reason})" if reason else "",
            )
            start_django(reloader, main_func, *args, **kwargs)
        else:
            sys.exit(restart_with_reloader())
    except KeyboardInterrupt:
        pass


__all__ = [
    "DJANGO_AUTORELOAD_ENV",
    "RUN_MAIN_ENV",
    "BaseReloader",
    "StatReloader",
    "WatchmanReloader",
    "WatchmanUnavailable",
    "autoreload_started",
    "check_errors",
    "common_roots",
    "ensure_echo_on",
    "file_changed",
    "get_child_arguments",
    "get_reloader",
    "iter_all_python_module_files",
    "iter_modules_and_files",
    "raise_last_exception",
    "restart_with_reloader",
    "run_with_reloader",
    "start_django",
    "sys_path_directories",
    "trigger_reload",
]
