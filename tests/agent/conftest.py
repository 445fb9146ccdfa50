"""Fixtures for the agent tests: a channel with its reader running, and real Python children."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import PYTHON, Spawned
from watchreload.agent.channel import AgentChannel

Spawn = Callable[..., Spawned]


@pytest.fixture
def channel() -> Iterator[AgentChannel]:
    with AgentChannel() as agent_channel:
        agent_channel.start_reader()
        yield agent_channel


class RunPython:
    """Runs `python SCRIPT` as the supervisor will: the environment from channel.start_run()."""

    def __init__(self, spawn: Spawn, channel: AgentChannel, directory: Path) -> None:
        self.spawn = spawn
        self.channel = channel
        self.directory = directory

    def write(self, name: str, text: str) -> Path:
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def environment(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHRELOAD_")}
        env.pop("PYTHONPATH", None)
        env.update(extra)
        env.update(self.channel.start_run([PYTHON], env))
        return env

    def start(self, script: Path, *args: str, **extra_env: str) -> Spawned:
        return self.spawn(
            [PYTHON, str(script), *args], env=self.environment(**extra_env), cwd=self.directory
        )

    def run(self, script: Path, *args: str, **extra_env: str) -> Spawned:
        """Start the script and wait for it to end; the caller checks the status."""
        process = self.start(script, *args, **extra_env)
        process.wait()
        return process


@pytest.fixture
def python(spawn: Spawn, channel: AgentChannel, tmp_path: Path) -> RunPython:
    return RunPython(spawn, channel, tmp_path)
