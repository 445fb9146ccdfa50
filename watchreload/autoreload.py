"""Library mode: Django's run_with_reloader, without Django.

The parent process re-runs the program as a child marked by WATCHRELOAD_RUN_MAIN=true, and runs it
again for as long as the child exits with code 3. The child runs `main_func` in a thread and the
reloader in its main thread; a debounced batch of changes ends it with exit code 3.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchreload.changes import ChangeSet
from watchreload.errors import EXIT_ERROR, WatchreloadError
from watchreload.modules import record_error_file
from watchreload.process import STOP_TIMEOUT_S, ChildProcess, signals_handled, watching
from watchreload.reloaders import BaseReloader, get_reloader

logger = logging.getLogger(__name__)

RUN_MAIN_ENV = "WATCHRELOAD_RUN_MAIN"
RELOAD_EXIT_CODE = 3


def get_child_arguments() -> list[str]:
    """The command line that runs this program again: `-W`/`-X` options, `-m pkg` or the script."""
    import __main__

    args = [sys.executable, *(f"-W{option}" for option in sys.warnoptions)]
    args += [
        f"-X{key}" if value is True else f"-X{key}={value}"
        for key, value in getattr(sys, "_xoptions", {}).items()
    ]
    main_spec = getattr(__main__, "__spec__", None)
    script = Path(sys.argv[0])
    if main_spec is not None:
        # `python -m pkg` runs pkg.__main__; re-run the package, not its __main__ module.
        is_package_main = main_spec.name == "__main__" or main_spec.name.endswith(".__main__")
        name = main_spec.parent if is_package_main and main_spec.parent else main_spec.name
        return [*args, "-m", name, *sys.argv[1:]]
    if not script.exists():
        raise WatchreloadError(
            f"script {str(script)!r} does not exist, so it cannot be re-run; "
            "start the program as 'python SCRIPT' or 'python -m MODULE'"
        )
    return [*args, *sys.argv]


def trigger_reload(filename: object) -> None:
    """End this child with exit code 3 so that the parent starts a fresh one."""
    logger.info("%s changed, reloading.", filename)
    sys.exit(RELOAD_EXIT_CODE)


def restart_with_reloader() -> int:
    """Run the program as a child until it exits with anything but 3; return that exit code."""
    env = {**os.environ, RUN_MAIN_ENV: "true"}
    args = get_child_arguments()
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


def check_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `func` so that the file behind an exception it raises is watched, then re-raise."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, SyntaxError) and exc.filename:
                record_error_file(exc.filename)
            else:
                frames = traceback.extract_tb(exc.__traceback__)
                if frames:
                    record_error_file(frames[-1].filename)
            raise

    return wrapper


def run_reloader_in_child(
    reloader: BaseReloader, main_func: Callable[..., Any], *args: Any, **kwargs: Any
) -> None:
    """Run `main_func` in a daemon thread and the reloader here; exit 3 on the first batch."""
    with watching(reloader, "the program"):
        main_thread = threading.Thread(
            target=check_errors(main_func),
            args=args,
            kwargs=kwargs,
            name="watchreload-main",
            daemon=True,
        )
        main_thread.start()
        while True:
            changes: ChangeSet | None = reloader.wait_for_changes(timeout_s=1.0)
            if changes is not None:
                trigger_reload(changes.describe())
            if reloader.error is not None:
                raise WatchreloadError(f"the {reloader.name} reloader failed: {reloader.error}")


def run_with_reloader(main_func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run `main_func(*args, **kwargs)` and restart the whole program when a source file changes.

    The backend, its intervals, the debounce and the ignores come from the settings, as for
    get_reloader(): `WATCHRELOAD_*` variables, then `[tool.watchreload]` of the nearest
    pyproject.toml.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if os.environ.get(RUN_MAIN_ENV) == "true":
            reloader = get_reloader()
            logger.info(
                "Watching for file changes with %s (%s)", type(reloader).__name__, reloader.reason
            )
            run_reloader_in_child(reloader, main_func, *args, **kwargs)
        else:
            sys.exit(restart_with_reloader())
    except KeyboardInterrupt:
        pass
