"""The host side of `watchreload forward`: watch the host directories with the usual backend and
write each batch into a command whose stdin reaches the container (`docker exec -i NAME
watchreload receive`), starting that command again, with backoff, whenever it ends.

A batch is already whole and debounced here (a checkout held by its VCS state is one batch), so
it is one line per container directory. A batch that says the backend may have missed changes
(a fresh Watchman daemon, a cancelled watch) becomes a rescan, and so does every new stream: the
container finds what changed while no stream was up with a scan of its own.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from watchreload.changes import Change, ChangeSet
from watchreload.config import check_root
from watchreload.errors import ForwardUsageError, ReloaderFailed
from watchreload.forward import protocol
from watchreload.forward.protocol import Message
from watchreload.reloaders.base import BaseReloader

logger = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 10.0
STREAM_SETTLED_S = 2.0  # a stream up this long counts as connected again
STREAM_CLOSE_TIMEOUT_S = 2.0
BATCH_WAIT_S = 0.5  # how often an idle forwarder looks at its stream and at VCS states


class DirMapping(NamedTuple):
    host_dir: Path
    container_dir: str


def parse_mapping(text: str, cwd: Path) -> DirMapping:
    """`HOST_DIR:CONTAINER_DIR` (split at the last colon, so `C:\\src:/app` works)."""
    host, separator, container = text.rpartition(":")
    if not separator or not host or not container:
        raise ForwardUsageError(
            f"mapping {text!r} is not HOST_DIR:CONTAINER_DIR; pass one such as '.:/app'"
        )
    if not container.startswith("/"):
        raise ForwardUsageError(
            f"container directory {container!r} of {text!r} is not absolute; pass it as the "
            "container sees it, such as '/app'"
        )
    return DirMapping(check_root(host, cwd), str(PurePosixPath(container)))


def batch_messages(batch: ChangeSet, mappings: Sequence[DirMapping]) -> list[Message]:
    """The lines that carry one batch: its changes per container directory, then a rescan of
    every directory when the batch says changes may have been missed."""
    grouped: dict[str, list[tuple[Change, str]]] = {}
    for path, kind in batch.changes.items():
        for mapping in mappings:
            if path.is_relative_to(mapping.host_dir):
                relative = path.relative_to(mapping.host_dir).as_posix()
                grouped.setdefault(mapping.container_dir, []).append((kind, relative))
                break
    messages = [protocol.changes(root, tuple(items)) for root, items in grouped.items()]
    if batch.reason:
        messages += [protocol.rescan(m.container_dir, batch.reason) for m in mappings]
    return messages


class Stream:
    """One run of the command that carries the lines into the container."""

    def __init__(self, command: Sequence[str], *, quiet: bool = False) -> None:
        self.started_at = time.monotonic()
        # Retried while the container is away, its error line would repeat at every attempt.
        stderr = subprocess.DEVNULL if quiet else None
        self._popen = subprocess.Popen(list(command), stdin=subprocess.PIPE, stderr=stderr)

    def send(self, messages: Sequence[Message]) -> bool:
        """Write the lines; False once the command no longer reads them."""
        stdin = self._popen.stdin
        if stdin is None or self._popen.poll() is not None:
            return False
        try:
            stdin.write(b"".join(protocol.encode(m) for m in messages))
            stdin.flush()
        except OSError:  # BrokenPipeError: the command ended
            return False
        return True

    def ended(self) -> int | None:
        return self._popen.poll()

    def close(self) -> int | None:
        """End of input, then up to STREAM_CLOSE_TIMEOUT_S for the command to exit, then kill."""
        if self._popen.stdin is not None:
            with contextlib.suppress(OSError):  # the command has gone: nothing to flush
                self._popen.stdin.close()
        try:
            return self._popen.wait(STREAM_CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            return self._popen.wait()


class Forwarder:
    """Runs until `stop()`: the watching, the stream, and its restarts."""

    def __init__(
        self, mappings: Sequence[DirMapping], command: Sequence[str], reloader: BaseReloader
    ) -> None:
        self.mappings = list(mappings)
        self.command = list(command)
        self.reloader = reloader
        self._stopping = threading.Event()
        self._stream: Stream | None = None
        self._lost_at: float | None = None  # when the stream was lost, until it is up again
        self._backoff_s = BACKOFF_FIRST_S
        self._paused = False
        self._rules_generation = self._current_rules_generation()
        self.streams_started = 0

    def stop(self, _signum: int = 0) -> None:
        self._stopping.set()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                if self._stream is None and not self._open_stream():
                    continue
                batch = self.reloader.wait_for_changes(BATCH_WAIT_S)
                if self.reloader.error is not None:
                    raise ReloaderFailed(
                        f"the {self.reloader.name} reloader failed: {self.reloader.error}"
                    ) from self.reloader.error
                self._send(self._pause_messages() + self._rules_messages())
                if batch is not None:
                    self._send(batch_messages(batch, self.mappings))
                self._check_stream()
        finally:
            if self._stream is not None:
                self._stream.close()

    def _open_stream(self) -> bool:
        self._stream = Stream(self.command, quiet=self._lost_at is not None)
        self.streams_started += 1
        roots = tuple(m.container_dir for m in self.mappings)
        reason = "a new stream" if self.streams_started == 1 else "the stream was started again"
        opening = [protocol.hello(roots, self.reloader.name)]
        opening += [protocol.rescan(root, reason) for root in roots]
        self._paused = False
        self._send(opening + self._pause_messages())
        return self._stream is not None

    def _pause_messages(self) -> list[Message]:
        paused = self.reloader.batcher.paused
        if paused == self._paused:
            return []
        self._paused = paused
        return [Message("pause" if paused else "resume")]

    def _current_rules_generation(self) -> int:
        rules = self.reloader.gitignore_rules
        return 0 if rules is None else rules.generation

    def _rules_messages(self) -> list[Message]:
        """A rescan once the host's git ignore rules changed. The backend reports no change for
        an ignore file (it only re-reads the rules), and the container, on events, scans
        nothing: its own rules would stay as they were."""
        generation = self._current_rules_generation()
        if generation == self._rules_generation:
            return []
        self._rules_generation = generation
        reason = "the git ignore rules changed on the host"
        return [protocol.rescan(m.container_dir, reason) for m in self.mappings]

    def _send(self, messages: list[Message]) -> None:
        if messages and self._stream is not None and not self._stream.send(messages):
            self._lose_stream()

    def _check_stream(self) -> None:
        stream = self._stream
        if stream is None:
            return
        if stream.ended() is not None:
            self._lose_stream()
        elif self._lost_at is not None and time.monotonic() - stream.started_at >= STREAM_SETTLED_S:
            logger.info(
                "forwarding again after %.1fs (the container rescans what changed meanwhile)",
                time.monotonic() - self._lost_at,
            )
            self._lost_at, self._backoff_s = None, BACKOFF_FIRST_S

    def _lose_stream(self) -> None:
        stream, self._stream = self._stream, None
        status = stream.close() if stream is not None else None
        if self._lost_at is None:
            self._lost_at = time.monotonic()
            logger.warning(
                "the stream into the container ended (%s exited with %s); starting it again "
                "with backoff until it stays up",
                self.command[0],
                status,
            )
        else:
            logger.debug("the stream ended again (status %s)", status)
        self._stopping.wait(self._backoff_s)
        self._backoff_s = min(BACKOFF_MAX_S, self._backoff_s * 2)
