"""What the daemon says, made into what a reloader does: changes, held reloads and warnings.

No I/O and no daemon: the reloader hands PDUs in, and each piece here decides one thing. A
Subscription remembers the last clock the daemon told it (`take_clock`); `file_changes` turns a
result's file list into changes, and `reported_signatures` into the files as the daemon saw them;
EventHandler holds reloads while a VCS state is asserted and reports recrawls and the "poisoned"
daemon once each, with the fix.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from watchreload.changes import Change, ChangeBatcher, FileChange
from watchreload.reloaders.watchman.plan import SubscriptionPlan
from watchreload.scan import Signature
from watchreload.vcs import DEFERRED_STATES

logger = logging.getLogger(__name__)

INOTIFY_FIX = (
    "raise the limit (sudo sysctl fs.inotify.max_user_watches=524288, and persist it in "
    "/etc/sysctl.d/), then run 'watchman watch-del-all' and 'watchman shutdown-server'"
)


@dataclass
class Subscription:
    """Our one subscription on a watch-project root."""

    plan: SubscriptionPlan
    name: str
    query: dict[str, Any]
    clock: str | None = None  # the last clock the daemon told us: resubscribe since this

    def take_clock(self, pdu: dict[str, Any]) -> None:
        """Remember a PDU's clock."""
        clock = pdu.get("clock")
        if isinstance(clock, str):
            self.clock = clock


def file_changes(plan: SubscriptionPlan, files: list[Any]) -> list[FileChange]:
    """The changes a subscription result lists, as paths the spec names."""
    changes: list[FileChange] = []
    for entry in files:
        if isinstance(entry, str):
            entry = {"name": entry, "exists": True, "new": False}
        exists, new = bool(entry.get("exists", True)), bool(entry.get("new", False))
        if not exists and new:
            continue  # created and removed again between two notifications
        change = Change.deleted if not exists else Change.added if new else Change.modified
        changes.append((plan.path_for(str(entry["name"])), change))
    return changes


def reported_signatures(plan: SubscriptionPlan, files: list[Any]) -> dict[str, Signature | None]:
    """Each listed file's signature as the daemon saw it, by the path the spec names (None: gone).

    Symlinks are left out: the daemon describes the link, scan.py's signature its target.
    """
    signatures: dict[str, Signature | None] = {}
    for entry in files:
        if not isinstance(entry, dict):
            continue
        path = os.fspath(plan.path_for(str(entry["name"])))
        if not entry.get("exists", True):
            signatures[path] = None
        elif entry.get("type") == "f" and all(k in entry for k in ("mtime_ns", "size", "ino")):
            signatures[path] = (int(entry["mtime_ns"]), int(entry["size"]), int(entry["ino"]))
    return signatures


class EventHandler:
    """States that hold reloads, and the daemon's warnings and errors, reported once each."""

    def __init__(self, batcher: ChangeBatcher) -> None:
        self._batcher = batcher
        self._held_states: set[tuple[str, str]] = set()
        self._reported: set[str] = set()

    def handle_states(self, root: str, pdu: dict[str, Any]) -> None:
        if "state-enter" in pdu:
            self._state_entered(root, str(pdu["state-enter"]))
        if "state-leave" in pdu:
            self._state_left(root, str(pdu["state-leave"]), bool(pdu.get("abandoned")))

    def release_states(self) -> None:
        """Resume reloads held by states on a connection that is gone."""
        for _ in self._held_states:
            self._batcher.resume()
        self._held_states.clear()

    def fresh_instance(self, root: str) -> None:
        logger.warning(
            "Watchman lost track of %s (it restarted, or recrawled); reloading once to be safe",
            root,
        )
        self._batcher.add_reason(f"Watchman restarted; changes under {root} may have been missed")

    def report_warning(self, warning: str) -> None:
        warning = " ".join(warning.split())
        lowered = warning.lower()
        if "recrawl" in lowered:
            self._report_once(
                "recrawl",
                "Watchman had to recrawl (%s); if this repeats the inotify watch limit is probably "
                "too low: " + INOTIFY_FIX,
                warning.strip(),
            )
        else:
            self._report_once(warning, "Watchman warns: %s", warning.strip())

    def report_error(self, error: str) -> None:
        error = " ".join(error.split())
        lowered = error.lower()
        if any(s in lowered for s in ("poison", "non-recoverable", "max_user_watches", "inotify")):
            self._report_once(
                "poisoned",
                "Watchman is out of inotify watches and stopped watching (%s): " + INOTIFY_FIX,
                error.strip(),
            )

    def _state_entered(self, root: str, state: str) -> None:
        if state in DEFERRED_STATES and (root, state) not in self._held_states:
            logger.info(
                "Watchman state %s entered on %s; holding reloads until it ends", state, root
            )
            self._held_states.add((root, state))
            self._batcher.pause()

    def _state_left(self, root: str, state: str, abandoned: bool) -> None:
        if (root, state) in self._held_states:
            self._held_states.discard((root, state))
            logger.info(
                "Watchman state %s %s on %s", state, "abandoned" if abandoned else "left", root
            )
            self._batcher.resume()

    def _report_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._reported:
            self._reported.add(key)
            logger.warning(message, *args)
