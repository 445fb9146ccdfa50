"""Where `watchreload receive` and the watchreload it relays to meet: a unix socket per
container directory, in a runtime directory only its owner can enter.

Both sides derive the same path from the directory: `$XDG_RUNTIME_DIR/watchreload/` (or
`/tmp/watchreload-<uid>/` without one), created 0700 and refused when it is not ours alone,
then `forward-<hash of the resolved directory>.sock`. Setting `forward-socket` names one
socket instead, for both sides.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import stat as stat_module
import struct
from pathlib import Path

from watchreload.errors import ForwardError

SOCKET_PREFIX = "forward-"


def runtime_dir() -> Path:
    """The private directory for our sockets, created when missing; ForwardError when it is not
    a directory that only we can enter."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(xdg) / "watchreload" if xdg else Path(f"/tmp/watchreload-{os.geteuid()}")
    with contextlib.suppress(FileExistsError):
        base.mkdir(mode=0o700, parents=bool(xdg))
    st = os.lstat(base)
    if not stat_module.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise ForwardError(
            f"{base} is not a directory of ours; remove it, or name a socket with setting "
            "`forward-socket`"
        )
    if st.st_mode & 0o077:
        raise ForwardError(
            f"{base} can be entered by other users (mode {stat_module.S_IMODE(st.st_mode):o}); "
            f"run 'chmod 700 {base}', or name a socket with setting `forward-socket`"
        )
    return base


def socket_path_for(directory: str | os.PathLike[str], named: str = "") -> Path:
    """The socket for a container directory (`named`, when the setting names one)."""
    if named:
        return Path(named)
    digest = hashlib.sha256(os.fsencode(os.path.realpath(directory))).hexdigest()[:16]
    return runtime_dir() / f"{SOCKET_PREFIX}{digest}.sock"


def listen_at(path: Path) -> socket.socket | None:
    """A listening socket at `path`, readable and writable by its owner only; None when another
    process already listens there. A stale socket file (nobody listening) is replaced."""
    if path.exists():
        if connect_to(path) is not None:
            return None
        path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Not os.umask(): it is the whole process's, and other threads create files. Until the chmod
    # the file has the umask's mode, in a directory that is ours alone (or, for a named socket,
    # where the peer check of every connection still holds).
    server.bind(os.fspath(path))
    os.chmod(path, 0o600)
    server.listen(4)
    return server


def connect_to(path: Path) -> socket.socket | None:
    """A connection to the socket at `path`, or None when nobody listens there."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(os.fspath(path))
    except OSError as exc:
        client.close()
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
            return None
        raise
    return client


def peer_uid(connection: socket.socket) -> int:
    """The user id of the process at the other end (SO_PEERCRED)."""
    credentials = connection.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
    )
    return int(struct.unpack("3i", credentials)[1])
