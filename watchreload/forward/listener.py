"""The receiving end: listening sockets, the connections `watchreload receive` opens, and the
lines they carry, read in one thread that blocks in select() (no CPU while nothing comes)."""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

from watchreload.errors import MalformedMessage
from watchreload.forward.protocol import MAX_LINE_BYTES, Message, decode
from watchreload.forward.sockets import listen_at, peer_uid
from watchreload.reloaders.watchman.wake import Waker

logger = logging.getLogger(__name__)

READ_SIZE = 1 << 16


@dataclass
class Connection:
    """One forwarder's stream, as `watchreload receive` relays it."""

    number: int
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    roots: tuple[str, ...] = ()  # from its hello; () until then
    pauses: int = 0  # pause messages not yet resumed
    rejected: int = 0  # paths refused (forward.paths)
    malformed: int = 0  # lines skipped


class StreamHandler:
    """What the listener calls, from its thread."""

    def message(self, connection: Connection, message: Message) -> None:
        raise NotImplementedError

    def malformed(self, connection: Connection, error: MalformedMessage) -> None:
        raise NotImplementedError

    def closed(self, connection: Connection) -> None:
        raise NotImplementedError


class Listener:
    """Listens at `paths` and hands each line of each connection to `handler`."""

    def __init__(self, paths: list[Path], handler: StreamHandler) -> None:
        self.paths = paths
        self._handler = handler
        self._selector = selectors.DefaultSelector()
        self._servers: dict[Path, socket.socket] = {}
        self._socket_inodes: dict[Path, int] = {}
        self._connections: dict[int, Connection] = {}
        self._numbers = iter(range(1, 1 << 62))
        self._waker = Waker()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._closed = False

    def open(self) -> list[Path]:
        """Listen at every path nobody else listens at; return those."""
        for path in self.paths:
            server = listen_at(path)
            if server is None:
                logger.warning(
                    "another watchreload already takes forwarded events at %s; this one polls",
                    path,
                )
                continue
            self._servers[path] = server
            self._socket_inodes[path] = os.stat(path).st_ino  # to remove only our own file
            self._selector.register(server, selectors.EVENT_READ, None)
        self._selector.register(self._waker.fileno, selectors.EVENT_READ, "wake")
        return list(self._servers)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="watchreload-forward-listener", daemon=True
        )
        self._thread.start()

    @property
    def connections(self) -> list[Connection]:
        return list(self._connections.values())

    def close(self) -> None:
        """Stop the thread, close every socket and remove the socket files we made (once)."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._waker.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        for connection in list(self._connections.values()):
            self._drop(connection, notify=False)
        for path, server in self._servers.items():
            with contextlib.suppress(OSError):
                if os.stat(path).st_ino == self._socket_inodes[path]:
                    path.unlink()
            server.close()
        self._servers.clear()
        self._selector.close()
        self._waker.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select():
                if key.data == "wake":
                    self._waker.drain()
                elif key.data is None:
                    self._accept(key.fileobj)  # type: ignore[arg-type]
                else:
                    self._read(key.data)

    def _accept(self, server: socket.socket) -> None:
        try:
            sock, _ = server.accept()
        except OSError:
            return
        uid = peer_uid(sock)
        if uid not in (os.geteuid(), 0):
            logger.warning("refused a forwarded stream from uid %d (only ours is taken)", uid)
            sock.close()
            return
        connection = Connection(next(self._numbers), sock)
        self._connections[connection.number] = connection
        self._selector.register(sock, selectors.EVENT_READ, connection)
        logger.debug("forwarded stream %d opened", connection.number)

    def _read(self, connection: Connection) -> None:
        try:
            data = connection.sock.recv(READ_SIZE)
        except OSError:
            data = b""
        if not data:
            self._drop(connection, notify=True)
            return
        connection.buffer += data
        while (end := connection.buffer.find(b"\n")) >= 0:
            line = bytes(connection.buffer[:end])
            del connection.buffer[: end + 1]
            self._dispatch(connection, line)
        if len(connection.buffer) > MAX_LINE_BYTES:
            self._handler.malformed(
                connection, MalformedMessage(f"a line longer than {MAX_LINE_BYTES} bytes")
            )
            self._drop(connection, notify=True)

    def _dispatch(self, connection: Connection, line: bytes) -> None:
        if not line.strip():
            return
        try:
            message = decode(line)
        except MalformedMessage as exc:
            self._handler.malformed(connection, exc)
            return
        self._handler.message(connection, message)

    def _drop(self, connection: Connection, *, notify: bool) -> None:
        self._connections.pop(connection.number, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(connection.sock)
        connection.sock.close()
        if notify:
            self._handler.closed(connection)
