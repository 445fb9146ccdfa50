"""The `watchreload` command: parse, set up logging, hand over to the library.

    watchreload [OPTIONS] -- COMMAND [ARGS]...

Settings also come from `WATCHRELOAD_*` environment variables and `[tool.watchreload]` in the
nearest pyproject.toml; the options are made from the table in watchreload.settings.

Exit codes:

| code  | meaning                                                                                 |
|-------|-----------------------------------------------------------------------------------------|
| 0     | watchreload was stopped (SIGINT/SIGTERM; on a terminal lent to the child, a Ctrl-C or a |
|       | hang-up) and the child exited with 0 (a child that caught Ctrl-C and exited 0)          |
| N     | watchreload was stopped and the child exited with N (its last status if it had ended)   |
| 128+N | watchreload was stopped and signal N ended the child: 143 SIGTERM, 137 SIGKILL after    |
|       | the stop timeout, 130 SIGINT (a Ctrl-C that killed the child), 129 SIGHUP               |
| 1     | watchreload failed at run time: `--backend=watchman` is not available, or the file      |
|       | watcher stopped with an error                                                           |
| 2     | usage error: unknown option, bad option or setting value, no command, a watch path      |
|       | that does not exist or is a file, an invalid glob, an invalid pyproject.toml table      |
| 126   | the command was found but cannot be executed                                            |
| 127   | the command was not found (with `--shell`, the shell reports this as the child's 127)   |
| 130   | interrupted (Ctrl-C) before the child was started                                       |

A failure is reported as one line, `watchreload: error: <what, why, and the fix>`, never as a
traceback.

In the foreground of a terminal (setting `tty` auto) the terminal is lent to the command
(watchreload.terminal, watchreload.supervisor); once it has hung up, writing to it fails (EIO):
log lines, the screen clearing and the error line at exit are then dropped, not turned into a
traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from watchreload.agent.mode import CommandMode, command_mode
from watchreload.command import check_command
from watchreload.config import Config, load_config
from watchreload.errors import EXIT_INTERRUPTED, WatchmanUnavailable, WatchreloadError
from watchreload.pid1 import become_init_if_pid1
from watchreload.process import watching
from watchreload.progress import ProgressHandler
from watchreload.reloaders import get_reloader
from watchreload.settings import SETTINGS, Setting
from watchreload.supervisor import Supervisor
from watchreload.terminal import ForegroundTerminal, sigttou_blocked

logger = logging.getLogger("watchreload")

F = TypeVar("F", bound=Callable[..., Any])


class Failure(click.ClickException):
    """A WatchreloadError, shown as one line with its exit code (nothing for Ctrl-C)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        if self.message:
            click.echo(f"watchreload: error: {self.format_message()}", err=True)


# What the command line adds to a library message, which speaks of settings and not of flags.
CLI_HINTS: dict[type[WatchreloadError], str] = {
    WatchmanUnavailable: "--backend=stat",
}


def _message_with_hint(exc: WatchreloadError) -> str:
    hints = [hint for error_class, hint in CLI_HINTS.items() if isinstance(exc, error_class)]
    return f"{exc} ({', '.join(hints)})" if hints else str(exc)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """The one place an error becomes an exit code: a WatchreloadError is one line (with the
    flag that helps), Ctrl-C before the child is started is 130."""
    try:
        yield
    except WatchreloadError as exc:
        raise Failure(_message_with_hint(exc), exc.exit_code) from exc
    except click.exceptions.Abort as exc:  # click's word for KeyboardInterrupt
        raise Failure("", EXIT_INTERRUPTED) from exc


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"watchreload: error: {message}"
        if record.levelno >= logging.WARNING:
            return f"watchreload: warning: {message}"
        return f"watchreload: {message}"


class _TerminalHandler(ProgressHandler):
    """stderr, which may be a terminal lent to the child, or one that has hung up.

    A line is written with SIGTTOU blocked (with `stty tostop`, a write from the background would
    stop watchreload), and dropped when the write fails (EIO after a hang-up). Progress lines are
    rewritten in place on a terminal (progress.py).
    """

    def emit(self, record: logging.LogRecord) -> None:
        with sigttou_blocked():
            super().emit(record)

    def close(self) -> None:
        with sigttou_blocked():
            super().close()

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)


@contextlib.contextmanager
def logging_to_stderr(verbosity: int) -> Iterator[None]:
    """Only the CLI attaches a handler: INFO by default, -v for DEBUG, -q WARNING, -qq ERROR."""
    levels = {1: logging.DEBUG, 0: logging.INFO, -1: logging.WARNING}
    level = levels.get(max(-2, min(1, verbosity)), logging.ERROR)
    handler = _TerminalHandler(sys.stderr)
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
    with contextlib.suppress(OSError):  # EIO: the terminal has hung up
        click.clear()


def supervise(config: Config) -> int:
    """Watch what `config` says and run its command under a Supervisor; return the exit code."""
    check_command(config.command, config.shell)
    with command_mode(config) as mode:
        return _supervise(config, mode)


def _supervise(config: Config, mode: CommandMode) -> int:
    reloader = get_reloader(
        config.backend,
        poll_interval_s=config.poll_interval_s,
        watchman_timeout_s=config.watchman_timeout_s,
        roots=config.roots,
        ignore_patterns=config.ignore_patterns,
        gitignore=config.gitignore,
        watch_modules=False,
        debounce_ms=config.debounce_ms,
        debounce_max_ms=config.debounce_max_ms,
        forward_socket=config.forward_socket,
    )
    for root in config.roots:
        for glob in config.include_globs:
            reloader.watch_dir(root, glob)
    reason = f" ({reloader.reason})" if reloader.reason else ""
    logger.info(
        "using %s backend%s; watching %s for %s%s",
        reloader.name,
        reason,
        ", ".join(_show_path(root) for root in config.roots),
        ", ".join(config.include_globs),
        "".join(f"; {part}" for part in mode.start_line_parts()),
    )
    if config.pyproject is not None:
        logger.debug("settings read from %s", config.pyproject)
    logger.debug("ignoring %s", ", ".join(config.ignore_patterns) or "nothing")
    terminal = ForegroundTerminal.detect() if config.tty == "auto" else None
    if terminal is not None:
        logger.debug("in the foreground of a terminal: lending it to the command")
    supervisor = Supervisor(
        mode.command,
        shell=config.shell,
        stop_signal=config.stop_signal,
        stop_timeout_s=config.stop_timeout_s,
        on_restart=_clear_screen if config.clear else None,
        terminal=terminal,
        hooks=mode.hooks(reloader, ready_line=config.verbosity >= 0),
        launcher=mode.launcher(),
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


def _setting_option(setting: Setting[Any]) -> Callable[[F], F]:
    """The click option of a setting: its flags, type, metavar, default and help, from the table."""
    if setting.kind == "switch":
        declarations = [f"{setting.flag}/--no-{setting.key}"]
    else:
        declarations = [flag for flag in (setting.short_flag, setting.flag) if flag]
    value_type: Any = None  # click's own check: "--debounce soon" is a usage error
    if setting.kind == "number":
        value_type = float
    elif setting.kind == "choice":
        value_type = click.Choice(setting.choices)
    return click.option(
        *declarations,
        setting.name,
        type=value_type,
        multiple=setting.kind == "list",
        metavar=setting.metavar,
        default=setting.default,
        show_default=True,
        help=setting.help,
    )


def setting_options(func: F) -> F:
    """One option per setting, in the table's order."""
    for setting in reversed(SETTINGS):
        func = _setting_option(setting)(func)
    return func


def _given_on_the_command_line(params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings typed on the command line; the environment and the file may set the others."""
    context = click.get_current_context()
    return {
        setting.name: params[setting.name]
        for setting in SETTINGS
        if context.get_parameter_source(setting.name) is ParameterSource.COMMANDLINE
    }


@click.command(context_settings=CONTEXT_SETTINGS)
@setting_options
@click.option("-v", "--verbose", count=True, help="Say more (the changed paths, the signals).")
@click.option("-q", "--quiet", count=True, help="Say less: -q warnings and errors, -qq errors.")
@click.version_option(_version(), "--version", prog_name="watchreload")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="-- COMMAND [ARGS]...")
def command(verbose: int, quiet: int, command: tuple[str, ...], **params: Any) -> int:
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

    `watchreload doctor [-w PATH]... [--json]` checks the setup instead; `watchreload forward
    HOST_DIR:CONTAINER_DIR --container NAME` carries this host's file events into a container.
    """
    given = _given_on_the_command_line(params)
    config = load_config({**given, "command": command, "verbosity": verbose - quiet})
    with logging_to_stderr(config.verbosity):
        return supervise(config)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "-w",
    "--watch",
    "watch",
    multiple=True,
    metavar="PATH",
    help="A directory to check; repeat for more. Default: the `watch` setting.",
)
@click.option("--json", "json_output", is_flag=True, help="Print the checks as JSON.")
def doctor(watch: tuple[str, ...], json_output: bool) -> int:
    """Check what watching needs, one line per check, each problem with its fix.

    Exit codes: 0 healthy, 1 something needs fixing, 2 usage error.
    """
    from watchreload.doctor import doctor_main

    return doctor_main([Path(path) for path in watch], json_output)


# They build on the helpers above, hence imported here.
from watchreload.forward import commands as forward_commands  # noqa: E402

SUBCOMMANDS: dict[str, click.Command] = {
    "doctor": doctor,
    "forward": forward_commands.forward,
    "receive": forward_commands.receive,
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (callable from tests).

    `watchreload doctor ...` runs the doctor; anything else is `watchreload [OPTIONS] -- COMMAND`
    (a program named doctor runs as `watchreload -- doctor`).
    """
    args = sys.argv[1:] if argv is None else argv
    subcommand = SUBCOMMANDS.get(args[0]) if args else None
    program, prog_name = (
        (subcommand, f"watchreload {args[0]}") if subcommand else (command, "watchreload")
    )
    if subcommand is not None:
        args = args[1:]
    else:
        become_init_if_pid1()  # in a container's PID 1, reap orphans (watchreload.pid1)
    try:
        with handle_errors():
            result = program.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.ClickException as exc:  # ours from handle_errors, or click's own usage errors
        with contextlib.suppress(OSError):
            exc.show()
        return exc.exit_code
    return result if isinstance(result, int) else 0
