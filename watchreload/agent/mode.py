"""Command mode's choices about the command itself, made once before the first start: the command
with a framework's own reloader turned off (frameworks.py), whether the agent runs (a Python
command, setting `agent` on), the scope of restarts, how children start (by exec, or with setting
`preload` forked from a template: preload/supervised.py), and what the start line says."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from watchreload.agent.channel import AgentChannel
from watchreload.agent.detect import is_python_command
from watchreload.agent.supervised import ChildSupport, FileWatcher
from watchreload.config import Config
from watchreload.frameworks import InnerReloaderOff, inner_reloader_off
from watchreload.launcher import ExecLauncher, Launcher


@dataclass
class CommandMode:
    config: Config
    command: tuple[str, ...]
    channel: AgentChannel | None
    python: bool
    inner: InnerReloaderOff | None

    @property
    def scope(self) -> str:
        return self.config.scope if self.channel is not None else "tree"

    def start_line_parts(self) -> list[str]:
        if self.channel is not None:
            why = "agent on"
        elif not self.python:
            why = "not a Python command"
        else:
            why = "agent off"
        parts = [f"scope {self.scope} ({why})"]
        if self.inner is not None:
            parts.append(self.inner.describe())
        if self.config.preload:
            unavailable = self.preload_unavailable()
            parts.append("preload on" if unavailable is None else f"preload off ({unavailable})")
        return parts

    def preload_unavailable(self) -> str | None:
        if not self.python:
            return "not a Python command"
        if self.channel is None:
            return "it needs the agent: setting `agent` is off"
        from watchreload.preload.launch import parse_command  # only with setting `preload`

        parsed = parse_command(self.command, os.getcwd(), os.environ.get("PATH"))
        return parsed if isinstance(parsed, str) else None

    def launcher(self) -> Launcher:
        """How children start: forked from a template with setting `preload`, else by exec."""
        if not self.config.preload or self.channel is None or self.preload_unavailable():
            return ExecLauncher()
        from watchreload.preload.supervised import Preloader  # only when asked for

        return Preloader(self.channel, self.config.roots, shell=self.config.shell)

    def hooks(self, watcher: FileWatcher, *, ready_line: bool) -> ChildSupport:
        return ChildSupport(
            self.channel,
            scope_imports=self.scope == "imports",
            roots=self.config.roots,
            watcher=watcher,
            ready_line=ready_line,
        )


@contextlib.contextmanager
def command_mode(config: Config) -> Iterator[CommandMode]:
    """The CommandMode of `config`, with the agent's channel open (and reading) while inside."""
    inner = None
    if not config.keep_inner_reloader:
        inner = inner_reloader_off(config.command, os.environ, shell=config.shell)
    command = inner.command if inner is not None else config.command
    python = is_python_command(command, config.shell, path=os.environ.get("PATH"))
    channel = AgentChannel() if python and config.agent else None
    try:
        if channel is not None:
            channel.start_reader()
        yield CommandMode(config, tuple(command), channel, python, inner)
    finally:
        if channel is not None:
            channel.close()
