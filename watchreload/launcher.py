"""How command mode starts each child: by exec (`ExecLauncher`), or forked from a preloaded
template (preload/supervised.py's `Preloader`). The supervisor decides when; a launcher decides how.

A `Child` is what the supervisor holds of a running command, whichever way it started:
process.ChildProcess for exec, preload.forked.ForkedChild for a fork. Both lead a process group
of their own with a terminal.GroupWitness in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from watchreload.process import ChildProcess


class Child(Protocol):
    """A started command: its leader's pid (and group), status, stop, and job-control reports."""

    name: str

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def running(self) -> bool: ...

    def stop(
        self, signum: int | None, timeout_s: float = ..., hurry: Callable[[], bool] = ...
    ) -> int | None: ...

    def group_signal(self, settle_s: float = 0.0) -> int | None: ...

    def stopped_by(self) -> int | None: ...

    def collect_stop(self) -> int | None: ...


class Launcher(Protocol):
    """Starts the command's children for a supervisor, and hears how each one ended."""

    def path(self, command: Sequence[str], env: Mapping[str, str]) -> str | None:
        """How the next start will go, for the restart line; None when there is one way only."""
        ...

    def start(self, command: Sequence[str], env: Mapping[str, str], *, shell: bool) -> Child:
        """Start the command; CommandError when it cannot be started."""
        ...

    def ended(self, child: Child, returncode: int | None) -> str | None:
        """`child` exited with `returncode` (None: stopped for a restart, so it was working).

        A reason to start the command again at once (not waiting for a change), or None.
        """
        ...

    def poll(self) -> None:
        """Called on every turn of the supervisor's loop."""
        ...

    def close(self) -> None:
        """At the end of the run, after the last child is stopped."""
        ...


class ExecLauncher:
    """Every child by exec: a guarded ChildProcess leading a group of its own."""

    def path(self, command: Sequence[str], env: Mapping[str, str]) -> str | None:
        return None

    def start(self, command: Sequence[str], env: Mapping[str, str], *, shell: bool) -> ChildProcess:
        child = ChildProcess(command, env=env, own_group=True, shell=shell, guard=True)
        child.start()
        return child

    def ended(self, child: Child, returncode: int | None) -> str | None:
        return None

    def poll(self) -> None:
        pass

    def close(self) -> None:
        pass
