"""`watchreload receive`: the container end of the stream. It reads the hello to learn the
container directories, connects to the socket of the watchreload that watches one of them, and
relays its stdin there byte for byte; it reads, parses and runs nothing else."""

from __future__ import annotations

import logging
import os
import select
import socket
from pathlib import Path

from watchreload.errors import ForwardError, MalformedMessage
from watchreload.forward.protocol import MAX_LINE_BYTES, decode
from watchreload.forward.sockets import connect_to, socket_path_for

logger = logging.getLogger(__name__)

READ_SIZE = 1 << 16


def read_first_line(fd: int) -> tuple[bytes, bytes]:
    """The first line read from `fd` (without its newline) and what was read after it."""
    data = bytearray()
    while b"\n" not in data:
        chunk = os.read(fd, READ_SIZE)
        if not chunk or len(data) > MAX_LINE_BYTES:
            raise ForwardError(
                "the stream ended before its hello line; run 'watchreload forward' on the host, "
                "with this command as its --exec"
            )
        data += chunk
    line, _, rest = bytes(data).partition(b"\n")
    return line, rest


def connect_for(line: bytes, named_socket: str) -> tuple[socket.socket, Path]:
    """The connection to the watchreload that takes the stream this hello opens."""
    try:
        hello = decode(line)
    except MalformedMessage as exc:
        raise ForwardError(f"the stream does not start with a hello ({exc})") from exc
    if hello.type != "hello":
        raise ForwardError(f"the stream starts with a {hello.type}, not a hello")
    roots = hello.roots
    paths = [socket_path_for("", named_socket)] if named_socket else []
    paths += [] if named_socket else [socket_path_for(root) for root in roots]
    for path in paths:
        connection = connect_to(path)
        if connection is not None:
            return connection, path
    raise ForwardError(
        f"no watchreload takes forwarded events for {', '.join(roots)} here (nobody listens at "
        f"{', '.join(map(str, paths))}); start 'watchreload -- COMMAND' in the container, "
        "watching that directory, on a mount that it polls"
    )


def relay(fd: int, connection: socket.socket, path: Path) -> int:
    """Copy `fd` to the connection until either ends: 0 at the end of the stream, 1 when the
    watchreload at the other end went away."""
    while True:
        readable, _, _ = select.select([fd, connection.fileno()], [], [])
        if connection.fileno() in readable and not connection.recv(READ_SIZE):
            logger.warning("the watchreload at %s went away; ending the relay", path)
            return 1
        if fd in readable:
            data = os.read(fd, READ_SIZE)
            if not data:
                connection.shutdown(socket.SHUT_WR)
                return 0
            connection.sendall(data)


def receive(named_socket: str = "", fd: int = 0) -> int:
    line, rest = read_first_line(fd)
    connection, path = connect_for(line, named_socket)
    with connection:
        logger.debug("relaying the forwarded stream to %s", path)
        try:
            connection.sendall(line + b"\n" + rest)
            return relay(fd, connection, path)
        except (BrokenPipeError, ConnectionResetError):
            logger.warning("the watchreload at %s went away; ending the relay", path)
            return 1
