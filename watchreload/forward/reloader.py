"""ForwardedReloader: StatReloader's polling, replaced by the host's events while a forwarder is
connected.

`get_reloader("auto")` picks it where it would poll because a root is on a mount whose events
may not arrive. It listens at one socket per watched directory (sockets.py); while the hellos
of connected forwarders cover every watched directory and file, it stops scanning and blocks.
Each forwarded path is taken as a hint only: it must stay inside its container directory and a
watched root (paths.py), match this process's own WatchSpec, and its kind comes from a fresh
stat (freshstat.py) against the snapshot the polling keeps, so a forged or repeated event can at
most cause a restart. When the last forwarder goes, it scans at once (what changed in between
is found) and polls again. Changes, forwarded or scanned, go through `notify_files_changed`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watchreload.changes import Change, FileChange
from watchreload.errors import ForwardError, MalformedMessage
from watchreload.forward.listener import Connection, Listener, StreamHandler
from watchreload.forward.paths import ForwardedPaths
from watchreload.forward.protocol import Message
from watchreload.forward.sockets import socket_path_for
from watchreload.reloaders.stat import StatReloader
from watchreload.scan import Signature

logger = logging.getLogger(__name__)

# While on forwarded events nothing is scanned; this is how often it checks that the forwarders
# still cover what is watched (the command's agent may add files to watch).
COVERAGE_CHECK_S = 5.0


class ForwardedReloader(StatReloader, StreamHandler):
    """StatReloader that takes the host's events, forwarded by `watchreload forward`."""

    def __init__(self, *, forward_socket: str = "", **options: Any) -> None:
        super().__init__(**options)
        self._forward_socket = forward_socket
        self._listener: Listener | None = None
        self._wake = threading.Event()
        self._rescan_due = threading.Event()
        # One of the scan and a forwarded batch at a time: both read and update the snapshot.
        self._changes_lock = threading.Lock()
        self._on_events = False
        self.rejected_paths = 0
        self.malformed_lines = 0

    def tick(self) -> Iterator[None]:
        self._open_listener()
        self._take_baseline()
        if self._listener is not None:
            self._listener.start()
        yield
        next_poll = time.monotonic() + self.interval_s
        while not self.should_stop:
            covered = self._announce(self._covered())
            timeout = COVERAGE_CHECK_S if covered else max(0.0, next_poll - time.monotonic())
            self._wake.wait(timeout)
            self._wake.clear()
            if self.should_stop:
                break
            rescan = self._rescan_due.is_set()
            self._rescan_due.clear()
            if rescan or (not self._covered() and time.monotonic() >= next_poll):
                self._poll()
                next_poll = time.monotonic() + self.interval_s
            yield

    def stop(self) -> None:
        super().stop()
        self._wake.set()
        if self._listener is not None:
            self._listener.close()

    def _scan_and_notify(self) -> bool:
        with self._changes_lock:
            return super()._scan_and_notify()

    # -- the sockets, and whether they cover what is watched --------------------------------------

    def _open_listener(self) -> None:
        roots = list(self.spec().roots)
        try:
            if self._forward_socket:
                paths = [socket_path_for("", self._forward_socket)]
            else:
                paths = sorted({socket_path_for(root) for root in roots})
            listener = Listener(paths, self)
            opened = listener.open()
        except (ForwardError, OSError) as exc:
            logger.warning("cannot take forwarded file events (%s); polling only", exc)
            return
        if not opened:
            listener.close()
            return
        self._listener = listener
        example = roots[0] if roots else Path.cwd()
        logger.info(
            "taking file events forwarded from the host at %s (run 'watchreload forward "
            "HOST_DIR:%s --container NAME' there); polling until a forwarder connects",
            ", ".join(map(str, opened)),
            example,
        )

    def _covered(self) -> bool:
        """True when connected forwarders cover every watched directory and file."""
        if self._listener is None:
            return False
        forwarded = [Path(root) for c in self._listener.connections for root in c.roots]
        if not forwarded:
            return False
        spec = self.spec()
        watched = [*spec.roots, *spec.extra_files]
        return all(any(path.is_relative_to(root) for root in forwarded) for path in watched)

    def _announce(self, covered: bool) -> bool:
        """Say so when switching between forwarded events and polling."""
        if covered and not self._on_events:
            logger.info("a forwarder is connected: on forwarded events, polling stopped")
        elif self._on_events and not covered:
            logger.info(
                "no forwarder covers the watched files any more: polling every %gs again "
                "(rescanning now)",
                self.interval_s,
            )
        self._on_events = covered
        return covered

    # -- the stream (called from the listener's thread) --------------------------------------------

    def message(self, connection: Connection, message: Message) -> None:
        if message.type == "hello":
            connection.roots = message.roots
            logger.debug(
                "forwarder %d: %s (host backend %s)",
                connection.number,
                ", ".join(message.roots),
                message.backend,
            )
            self._wake.set()
        elif not connection.roots:
            self.malformed(connection, MalformedMessage(f"a {message.type} before the hello"))
        elif message.type == "changes":
            self._apply_forwarded(connection, message.root, message.changes)
        elif message.type == "rescan":
            logger.debug("forwarder %d asks for a rescan (%s)", connection.number, message.reason)
            self._rescan_due.set()
            self._wake.set()
        elif message.type == "pause":
            connection.pauses += 1
            self.batcher.pause()
        elif message.type == "resume" and connection.pauses:
            connection.pauses -= 1
            self.batcher.resume()

    def malformed(self, connection: Connection, error: MalformedMessage) -> None:
        connection.malformed += 1
        self.malformed_lines += 1
        logger.log(
            logging.WARNING if self.malformed_lines == 1 else logging.DEBUG,
            "skipped a malformed line from forwarder %d (%s); %d so far, further ones at -v",
            connection.number,
            error,
            self.malformed_lines,
        )

    def closed(self, connection: Connection) -> None:
        for _ in range(connection.pauses):
            self.batcher.resume()
        connection.pauses = 0
        if connection.rejected or connection.malformed:
            logger.info(
                "forwarder %d went away; it sent %d rejected paths and %d malformed lines",
                connection.number,
                connection.rejected,
                connection.malformed,
            )
        if connection.roots:
            logger.debug("forwarder %d went away", connection.number)
            self._rescan_due.set()
        self._wake.set()

    def _apply_forwarded(
        self, connection: Connection, root: str, changes: tuple[tuple[Change, str], ...]
    ) -> None:
        """Re-check each forwarded path on disk and report the ones that changed."""
        with self._changes_lock:
            spec = self.spec()
            paths = ForwardedPaths(root, spec.roots)
            reported: list[FileChange] = []
            for _, relative in changes:
                found = paths.found(relative)
                if found is None:
                    connection.rejected += 1
                    self._reject(root, relative)
                elif spec.matches(found[0]):
                    change = self._recheck(*found)
                    if change is not None:
                        reported.append((found[0], change))
            if reported:
                self.notify_files_changed(reported)

    def _recheck(self, path: Path, signature: Signature | None) -> Change | None:
        """What changed at `path`, whose `signature` was just read, since the snapshot, which is
        brought up to date; None when nothing did (a repeated or forged event, or one the scan
        has already seen)."""
        key = os.fspath(path)
        known = self._previous.get(key)
        if signature == known:
            return None
        if signature is None:
            del self._previous[key]
            return Change.deleted
        self._previous[key] = signature
        return Change.added if known is None else Change.modified

    def _reject(self, root: str, relative: str) -> None:
        self.rejected_paths += 1
        logger.log(
            logging.WARNING if self.rejected_paths == 1 else logging.DEBUG,
            "rejected forwarded path %r: it leaves %s or the watched directories; "
            "%d rejected so far, further ones at -v",
            relative,
            root,
            self.rejected_paths,
        )
