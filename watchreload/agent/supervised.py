"""What the supervisor does for the agent around each start: the child's environment, which
changes restart (scope.py), the modules outside the roots to watch, and the ready line.

The supervisor calls `environment()` before a start, `started()` after it, `scoped()` on each
batch before restarting and `poll()` on every turn of its loop; the channel is the caller's.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from watchreload.agent.channel import AgentChannel
from watchreload.changes import ChangeSet
from watchreload.launcher import Child
from watchreload.procfs import group_listening
from watchreload.readiness import Readiness
from watchreload.scope import Imports, decide, outside_modules

logger = logging.getLogger(__name__)

PROC_POLL_S = 0.25  # how often /proc is read for a non-Python command's listening socket
PROC_WATCH_S = 120.0  # and for how long after a start (a command that never listens)


class FileWatcher(Protocol):
    def watch_file(self, path: str | os.PathLike[str]) -> None: ...


def _show(path: Path) -> str:
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


class ChildSupport:
    """The agent's part of the supervisor's work, for one command over its life."""

    def __init__(
        self,
        channel: AgentChannel | None,
        *,
        scope_imports: bool = True,
        roots: Sequence[Path] = (),
        watcher: FileWatcher | None = None,
        ready_line: bool = True,
    ) -> None:
        self.channel = channel
        self.scope_imports = scope_imports
        self.roots = tuple(roots)
        self.watcher = watcher
        self.ready_line = ready_line
        self.active = False  # the agent reports on the current start
        self.watched_outside: set[Path] = set()
        self._readiness = Readiness()
        self._child: Child | None = None
        self._started_at = 0.0
        self._next_proc_poll = 0.0
        self._imports_seen = 0
        self._said_dropped = False

    def environment(
        self, command: Sequence[str], env: Mapping[str, str], *, shell: bool = False
    ) -> dict[str, str]:
        """The variables to add for the next start ({} for a non-Python command, or no agent)."""
        if self.channel is None:
            self.active = False
            return {}
        extra = self.channel.start_run(command, env, shell=shell)
        self.active = bool(extra)
        self._imports_seen = 0
        return extra

    def started(self, child: Child, since: float | None) -> None:
        self._child = child
        self._started_at = time.monotonic()
        self._next_proc_poll = 0.0
        if self.ready_line:
            self._readiness.started(since)

    def imports(self) -> Imports | None:
        """What the current start reported, or None when every change restarts."""
        if not (self.active and self.scope_imports and self.channel is not None):
            return None
        return Imports(
            frozenset(self.channel.imported_files()),
            frozenset(self.channel.failed_files()),
            reported=bool(self.channel.reporting_pids()),
        )

    def scoped(self, changes: ChangeSet) -> ChangeSet | None:
        """The changes of a batch that restart the child; None when none does."""
        decision = decide(changes, self.imports())
        for path in decision.dropped:
            logger.debug("  dropped (not imported): %s", path)
        if decision.restart is None:
            paths = ", ".join(_show(p) for p in decision.dropped[:3])
            more = ", ..." if len(decision.dropped) > 3 else ""
            level = logging.DEBUG if self._said_dropped else logging.INFO
            self._said_dropped = True
            logger.log(
                level,
                "%s%s changed; not imported by the program, no restart (--scope tree restarts "
                "on any change)",
                paths,
                more,
            )
        return decision.restart

    def poll(self) -> None:
        """Watch newly imported modules outside the roots; print the ready line when due."""
        if self.active and self.channel is not None:
            self._watch_outside(self.channel)
        if not self._readiness.waiting:
            return
        if self.active and self.channel is not None:
            line = self._readiness.seen(self.channel.listening(), self.channel.listening_seen_at())
        else:
            line = self._poll_proc()
        if line is not None:
            logger.info("%s", line)

    def _poll_proc(self) -> str | None:
        child = self._child
        now = time.monotonic()
        if child is None or child.poll() is not None or now - self._started_at > PROC_WATCH_S:
            self._readiness.give_up()
            return None
        if now < self._next_proc_poll:
            return None
        self._next_proc_poll = now + PROC_POLL_S
        return self._readiness.seen(group_listening(child.pid))

    def _watch_outside(self, channel: AgentChannel) -> None:
        imported = channel.imported_files()
        if self.watcher is None or len(imported) == self._imports_seen:
            return
        self._imports_seen = len(imported)
        for module in outside_modules(imported, self.roots) - self.watched_outside:
            # A file and not its directory: a file that joins the watch is not a change (a
            # directory's files would all look added), on either backend.
            self.watched_outside.add(module)
            self.watcher.watch_file(module)
            logger.debug("watching %s: imported from outside the watched directories", module)
