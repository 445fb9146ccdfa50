"""The `watchreload forward` and `watchreload receive` commands (registered in cli.SUBCOMMANDS).

watchreload forward [OPTIONS] HOST_DIR:CONTAINER_DIR... (--container NAME | --exec COMMAND)
watchreload receive [--forward-socket PATH]
"""

from __future__ import annotations

import logging
import shlex
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from watchreload.command import check_command
from watchreload.errors import ForwardUsageError
from watchreload.process import signals_handled, watching
from watchreload.reloaders import get_reloader
from watchreload.setting_sources import Settings
from watchreload.settings import (
    BACKEND,
    DEBOUNCE,
    DEBOUNCE_MAX,
    DEFAULT_IGNORES,
    FORWARD_SOCKET,
    GITIGNORE,
    GLOB,
    IGNORE,
    POLL_INTERVAL,
    WATCHMAN_TIMEOUT,
    BackendName,
    Setting,
)

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger(__name__)

# The container side debounces what it is sent (setting `debounce` there); the host only joins
# what arrives together, unless `debounce` is set for it too.
HOST_DEBOUNCE_MS = 10.0

# What decides, on the host, which files are watched and how.
FORWARD_SETTINGS: tuple[Setting[Any], ...] = (
    GLOB,
    IGNORE,
    DEFAULT_IGNORES,
    GITIGNORE,
    BACKEND,
    DEBOUNCE,
    DEBOUNCE_MAX,
    POLL_INTERVAL,
    WATCHMAN_TIMEOUT,
)


# watchreload.cli imports this module once the helpers used here are defined; importing them
# only when used keeps the cycle out of the type checker's way.


def _context_settings(**changes: object) -> dict[str, object]:
    from watchreload.cli import CONTEXT_SETTINGS

    return {**CONTEXT_SETTINGS, **changes}


def _options_of(settings: tuple[Setting[Any], ...]) -> Callable[[F], F]:
    from watchreload.cli import _setting_option

    def decorate(func: F) -> F:
        for setting in reversed(settings):
            func = _setting_option(setting)(func)
        return func

    return decorate


def _verbosity(func: F) -> F:
    func = click.option("-q", "--quiet", count=True, help="Say less: -q warnings and errors.")(func)
    return click.option("-v", "--verbose", count=True, help="Say more.")(func)


def _settings_given(settings: tuple[Setting[Any], ...], params: dict[str, Any]) -> Settings:
    """The settings, with those typed on the command line first."""
    context = click.get_current_context()
    given = {
        s.name: params[s.name]
        for s in settings
        if context.get_parameter_source(s.name) is ParameterSource.COMMANDLINE
    }
    return Settings(given)


def stream_command(exec_command: str | None, container: str | None) -> list[str]:
    if exec_command and container:
        raise ForwardUsageError("pass --exec or --container, not both")
    if container:
        return ["docker", "exec", "-i", container, "watchreload", "receive"]
    if exec_command:
        return shlex.split(exec_command)
    raise ForwardUsageError(
        "no way into the container given; pass --container NAME (docker exec -i NAME "
        "watchreload receive) or --exec COMMAND"
    )


@click.command(context_settings=_context_settings(allow_interspersed_args=True))
@click.argument("mappings", nargs=-1, required=True, metavar="HOST_DIR:CONTAINER_DIR...")
@click.option(
    "--exec",
    "exec_command",
    metavar="COMMAND",
    help="A command whose stdin reaches 'watchreload receive' in the container, split as a "
    "shell would ('podman exec -i NAME watchreload receive', 'ssh HOST watchreload receive').",
)
@click.option(
    "--container",
    metavar="NAME",
    help="Short for --exec 'docker exec -i NAME watchreload receive'.",
)
@_options_of(FORWARD_SETTINGS)
@_verbosity
def forward(
    mappings: tuple[str, ...],
    exec_command: str | None,
    container: str | None,
    verbose: int,
    quiet: int,
    **params: Any,
) -> int:
    """Watch HOST_DIR here and stream its changes into a container, where the watchreload
    watching CONTAINER_DIR (on a mount it would poll) uses them instead of polling.

    \b
      watchreload forward .:/app --container myapp-web-1
      watchreload forward .:/app --exec 'podman exec -i web watchreload receive'
    """
    from watchreload.cli import logging_to_stderr
    from watchreload.forward.sender import DirMapping, Forwarder, parse_mapping

    command = stream_command(exec_command, container)
    check_command(command)
    settings = _settings_given(FORWARD_SETTINGS, params)
    parsed: list[DirMapping] = [parse_mapping(text, Path.cwd()) for text in mappings]
    with logging_to_stderr(verbose - quiet):
        backend: BackendName = settings.get(BACKEND)
        globs: tuple[str, ...] = settings.get(GLOB)
        reloader = get_reloader(
            backend,
            poll_interval_s=settings.get(POLL_INTERVAL),
            watchman_timeout_s=settings.watchman_timeout_s(),
            roots=[m.host_dir for m in parsed],
            accept_forwarded=False,
            ignore_patterns=settings.ignore_patterns(),
            gitignore=settings.get(GITIGNORE),
            watch_modules=False,
            debounce_ms=settings.get(DEBOUNCE) if settings.is_set(DEBOUNCE) else HOST_DEBOUNCE_MS,
            debounce_max_ms=settings.get(DEBOUNCE_MAX),
        )
        for mapping in parsed:
            for glob in globs:
                reloader.watch_dir(mapping.host_dir, glob)
        pairs = ", ".join(f"{m.host_dir} to {m.container_dir}" for m in parsed)
        logger.info(
            "forwarding %s (%s backend: %s; %s) through: %s",
            pairs,
            reloader.name,
            reloader.reason,
            ", ".join(globs),
            shlex.join(command),
        )
        forwarder = Forwarder(parsed, command, reloader)
        handlers: dict[int, Callable[[int], None]] = {
            signal.SIGTERM: forwarder.stop,
            signal.SIGINT: forwarder.stop,
        }
        with signals_handled(handlers), watching(reloader, "forwarding"):
            forwarder.run()
    return 0


@click.command(context_settings=_context_settings())
@_options_of((FORWARD_SOCKET,))
@_verbosity
def receive(verbose: int, quiet: int, **params: Any) -> int:
    """Relay the stream of 'watchreload forward' (on stdin) to the watchreload in this container
    that watches its directory. Run by the forwarder, as in 'docker exec -i NAME watchreload
    receive'.
    """
    from watchreload.cli import logging_to_stderr
    from watchreload.forward.receiver import receive as relay_stdin

    settings = _settings_given((FORWARD_SOCKET,), params)
    with logging_to_stderr(verbose - quiet):
        return relay_stdin(settings.get(FORWARD_SOCKET))
