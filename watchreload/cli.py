"""The `watchreload` command: parse, set up logging, hand over to the library.

    watchreload [OPTIONS] -- COMMAND [ARGS]...

Settings also come from `WATCHRELOAD_*` environment variables and `[tool.watchreload]` in the
nearest pyproject.toml; see watchreload.config for the order.

Exit codes:

| code  | meaning                                                                                 |
|-------|-----------------------------------------------------------------------------------------|
| 0     | watchreload was stopped (SIGINT/SIGTERM) and the child exited with 0                    |
| N     | watchreload was stopped and the child exited with N (its last status if it had ended)   |
| 128+N | watchreload was stopped and signal N ended the child: 143 SIGTERM, 137 SIGKILL after    |
|       | the stop timeout, 130 SIGINT                                                            |
| 1     | watchreload failed at run time: `--backend=watchman` is not available, or the file      |
|       | watcher stopped with an error                                                           |
| 2     | usage error: unknown option, bad option or setting value, no command, a watch path      |
|       | that does not exist or is a file, an invalid glob, an invalid pyproject.toml table      |
| 126   | the command was found but cannot be executed                                            |
| 127   | the command was not found (with `--shell`, the shell reports this as the child's 127)   |
| 130   | interrupted (Ctrl-C) before the child was started                                       |

A failure is reported as one line, `watchreload: error: <what, why, and the fix>`, never as a
traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from watchreload.command import check_command
from watchreload.config import Config, load_config
from watchreload.errors import EXIT_INTERRUPTED, WatchreloadError
from watchreload.process import watching
from watchreload.progress import ProgressHandler
from watchreload.reloaders import BACKENDS, get_reloader
from watchreload.supervisor import Supervisor

logger = logging.getLogger("watchreload")


class Failure(click.ClickException):
    """A WatchreloadError, shown as one line with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        click.echo(f"watchreload: error: {self.format_message()}", err=True)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn a WatchreloadError into one line and an exit code."""
    try:
        yield
    except WatchreloadError as exc:
        raise Failure(str(exc), exc.exit_code) from exc


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"watchreload: error: {message}"
        if record.levelno >= logging.WARNING:
            return f"watchreload: warning: {message}"
        return f"watchreload: {message}"


@contextlib.contextmanager
def logging_to_stderr(verbosity: int) -> Iterator[None]:
    """Only the CLI attaches a handler: INFO by default, -v for DEBUG, -q WARNING, -qq ERROR."""
    levels = {1: logging.DEBUG, 0: logging.INFO, -1: logging.WARNING}
    level = levels.get(max(-2, min(1, verbosity)), logging.ERROR)
    handler = ProgressHandler(sys.stderr)  # progress lines rewritten in place on a terminal
    handler.setFormatter(_Formatter())
    previous_level, previous_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(previous_level)
        logger.propagate = previous_propagate


def _show_path(path: Path) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _clear_screen() -> None:
    click.clear()


def supervise(config: Config) -> int:
    """Watch what `config` says and run its command under a Supervisor; return the exit code."""
    check_command(config.command, config.shell)
    reloader = get_reloader(
        config.backend,
        poll_interval_s=config.poll_interval_s,
        watchman_timeout_s=config.watchman_timeout_s,
        roots=config.roots,
        ignore_patterns=config.ignore_patterns,
        watch_modules=False,
        debounce_ms=config.debounce_ms,
        debounce_max_ms=config.debounce_max_ms,
    )
    for root in config.roots:
        for glob in config.include_globs:
            reloader.watch_dir(root, glob)
    reason = f" ({reloader.reason})" if reloader.reason else ""
    logger.info(
        "using %s backend%s; watching %s for %s",
        reloader.name,
        reason,
        ", ".join(_show_path(root) for root in config.roots),
        ", ".join(config.include_globs),
    )
    if config.pyproject is not None:
        logger.debug("settings read from %s", config.pyproject)
    logger.debug("ignoring %s", ", ".join(config.ignore_patterns) or "nothing")
    supervisor = Supervisor(
        config.command,
        shell=config.shell,
        stop_signal=config.stop_signal,
        stop_timeout_s=config.stop_timeout_s,
        on_restart=_clear_screen if config.clear else None,
    )
    with watching(reloader, "the command"):
        return supervisor.run(reloader)


CONTEXT_SETTINGS = {
    "help_option_names": ["-h", "--help"],
    "allow_interspersed_args": False,
    "max_content_width": 100,
}


def _version() -> str:
    from watchreload import __version__

    return __version__


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    help="How to find changes: Watchman, stat polling, or auto (Watchman when available, "
    "otherwise stat).  [default: auto]",
)
@click.option(
    "-w",
    "--watch",
    multiple=True,
    metavar="PATH",
    help="Directory to watch; repeat for more.  [default: .]",
)
@click.option(
    "-g",
    "--glob",
    multiple=True,
    metavar="GLOB",
    help="Files to watch, a wildmatch glob relative to each watched directory ('**' crosses "
    "directories); repeat for more.  [default: **/*.py]",
)
@click.option(
    "-i",
    "--ignore",
    multiple=True,
    metavar="PATTERN",
    help="Extra pattern to ignore: a name ('build', '*.log') ignored at any depth, or a path "
    "glob ('docs/_build/**'); repeat for more. Added to the default ignores; replaces an "
    "ignore list from WATCHRELOAD_IGNORE or pyproject.toml.",
)
@click.option(
    "--default-ignores/--no-default-ignores",
    default=None,
    help="Ignore VCS directories, __pycache__, node_modules, virtualenvs, tool caches and "
    "editor swap files.  [default: on]",
)
@click.option(
    "--debounce",
    type=float,
    metavar="MS",
    help="Quiet period that closes a batch of changes: one restart per batch.  [default: 50]",
)
@click.option(
    "--debounce-max",
    type=float,
    metavar="MS",
    help="Restart at the latest this long after a batch's first change, even if changes keep "
    "coming.  [default: 2000]",
)
@click.option(
    "--stop-signal",
    metavar="SIGNAL",
    help="Signal that asks the command's process group to stop (TERM, SIGTERM and 15 all "
    "work).  [default: SIGTERM]",
)
@click.option(
    "--stop-timeout",
    type=float,
    metavar="SECONDS",
    help="How long to wait after the stop signal before SIGKILL.  [default: 5]",
)
@click.option(
    "--poll-interval",
    type=float,
    metavar="SECONDS",
    help="How often the stat backend scans.  [default: 1.0]",
)
@click.option(
    "--watchman-timeout",
    type=float,
    metavar="SECONDS",
    help="How long to wait for the Watchman daemon to answer.  [default: 5]",
)
@click.option(
    "--shell/--no-shell",
    default=None,
    help="Run the command through /bin/sh -c (its words joined by spaces).  [default: off]",
)
@click.option(
    "--clear/--no-clear",
    default=None,
    help="Clear the terminal before each restart.  [default: off]",
)
@click.option("-v", "--verbose", count=True, help="Say more (the changed paths, the signals).")
@click.option("-q", "--quiet", count=True, help="Say less: -q warnings and errors, -qq errors.")
@click.version_option(_version(), "--version", prog_name="watchreload")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="-- COMMAND [ARGS]...")
def command(verbose: int, quiet: int, **params: Any) -> int:
    """Run COMMAND and restart it whenever a watched file changes.

    \b
      watchreload -- python app.py
      watchreload -w src -g '**/*.py' -g '**/*.toml' -- python -m myapp
      watchreload --stop-signal INT --stop-timeout 10 -- gunicorn app:wsgi

    Every option can also be set as WATCHRELOAD_<OPTION> (WATCHRELOAD_STOP_TIMEOUT=10) or in
    [tool.watchreload] of the nearest pyproject.toml (stop-timeout = 10); the command line wins,
    then the environment, then the file.

    Exit codes: the child's status when stopped (128+N if signal N ended it), 1 runtime error,
    2 usage error, 126 command not executable, 127 command not found.
    """
    with handle_errors():
        config = load_config({**params, "verbosity": verbose - quiet})
        with logging_to_stderr(config.verbosity):
            return supervise(config)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (callable from tests)."""
    try:
        result = command.main(args=argv, prog_name="watchreload", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else 0
