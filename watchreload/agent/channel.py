"""The receiving end of the agent: the socket, the child's environment, and what was reported.

The supervisor owns one AgentChannel for its lifetime:

    channel = AgentChannel()                    # a private 0700 directory and a datagram socket
    channel.start_reader()                      # or select() on channel.fileno() and drain()
    for each start of the child:
        env.update(channel.start_run(command, env, shell=shell))   # {} for a non-Python command
        spawn the child with env
        ... channel.imported_files(), channel.failed_files(), channel.listening()
    channel.close()

**The channel** is an AF_UNIX SOCK_DGRAM socket bound in a directory only this user can enter
(`tempfile.mkdtemp`, mode 0700); its path is in WATCHRELOAD_AGENT_SOCKET. Every Python process of
the child's tree opens a socket of its own and sends to that path. An inherited descriptor would
not reach most of them: `subprocess` closes descriptors by default (`close_fds=True`), and so do
multiprocessing's spawn, uvicorn's and gunicorn's workers. A datagram needs no connection, no
accept loop and no framing (one datagram is one report), and with SO_PASSCRED the kernel says
which process sent it. The cost: the receiver's queue holds few datagrams
(`net.unix.max_dgram_qlen`, 10 by default), so the receiver must read promptly (a reader thread,
or the supervisor's select); a sender whose datagram does not fit keeps it and tries again with
its next report, and waits up to a second at exit.

**A report** is one line of JSON per datagram, at most 32 KiB, for example
`{"v":1,"run":3,"pid":123,"modules":["/app/main.py"],"failed":[],"listen":["127.0.0.1",8000]}`.
`run` is the start it belongs to (WATCHRELOAD_AGENT_RUN), so that a process left over from an
earlier start cannot change the state of the current one. Every datagram is untrusted input: one
that is malformed or forged (its pid is not the sender's) is logged once at WARNING (later ones at
DEBUG) and skipped; nothing in it is executed or opened, the paths are only ever paths to watch.

**What the child sees**: PYTHONPATH begins with the agent's bootstrap directory (the directory
holding the agent's `sitecustomize.py`; the user's entries follow in their order, and PYTHONPATH
is set to that directory alone when the user had none), and WATCHRELOAD_AGENT_SOCKET and
WATCHRELOAD_AGENT_RUN are set. They stay in `os.environ`, so that Python grandchildren report too;
`sys.path` does not contain the directory, and the user's own `sitecustomize` still runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import py_compile
import select
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from watchreload.agent.detect import is_python_command

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
SOCKET_ENV = "WATCHRELOAD_AGENT_SOCKET"
RUN_ENV = "WATCHRELOAD_AGENT_RUN"
BOOTSTRAP_DIR = Path(__file__).resolve().parent / "bootstrap"
REPORT_FILE = Path(__file__).resolve().parent / "_report.py"  # what the bootstrap loads
SOCKET_NAME = "agent.sock"
MAX_DATAGRAM_BYTES = 64 * 1024  # the agent sends at most 32 KiB; anything longer is malformed
MAX_PATH_CHARS = 4096  # PATH_MAX
MAX_SUN_PATH_BYTES = 107  # sockaddr_un.sun_path, less the terminating NUL

Address = tuple[str, int]

_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class Malformed(ValueError):
    """A datagram that is not a report of this protocol (the message says what is wrong)."""


def python_path_with_bootstrap(python_path: str | None) -> str:
    """PYTHONPATH with the bootstrap directory first (once), the other entries in their order."""
    entries = [e for e in (python_path or "").split(os.pathsep) if e and not _is_bootstrap(e)]
    return os.pathsep.join([str(BOOTSTRAP_DIR), *entries])


def without_agent(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with every trace of an agent removed (say one set up by an outer watchreload)."""
    cleaned = {k: v for k, v in env.items() if k not in (SOCKET_ENV, RUN_ENV)}
    python_path = cleaned.get("PYTHONPATH")
    if python_path is not None:
        entries = [e for e in python_path.split(os.pathsep) if not e or not _is_bootstrap(e)]
        if entries:
            cleaned["PYTHONPATH"] = os.pathsep.join(entries)
        else:
            del cleaned["PYTHONPATH"]
    return cleaned


def _is_bootstrap(entry: str) -> bool:
    return os.path.abspath(entry) == str(BOOTSTRAP_DIR)


def environment_for(
    command: Sequence[str],
    env: Mapping[str, str],
    socket_path: Path,
    run: int,
    *,
    shell: bool = False,
) -> dict[str, str]:
    """The variables to add to `env` so that the command's Python processes report; {} if none."""
    if not is_python_command(command, shell, path=env.get("PATH")):
        return {}
    return {
        "PYTHONPATH": python_path_with_bootstrap(env.get("PYTHONPATH")),
        SOCKET_ENV: str(socket_path),
        RUN_ENV: str(run),
    }


def ensure_bootstrap_bytecode() -> None:
    """Write the bytecode caches of the bootstrap and of the module it loads, for this interpreter,
    when they are missing or stale.

    pip writes them at install time; without them (an editable install under
    PYTHONDONTWRITEBYTECODE, as many Docker images set) every Python process of the child would
    compile the agent, a few milliseconds each. A read-only installation without them keeps that
    cost.
    """
    for source in (BOOTSTRAP_DIR / "sitecustomize.py", REPORT_FILE):
        cached = Path(importlib.util.cache_from_source(os.fspath(source)))
        try:
            if cached.exists() and cached.stat().st_mtime >= source.stat().st_mtime:
                continue
            py_compile.compile(os.fspath(source), cfile=os.fspath(cached), doraise=True)
        except (OSError, py_compile.PyCompileError) as exc:
            logger.debug("cannot write the agent's bytecode to %s: %s", cached, exc)


def _socket_directory() -> str:
    """A fresh 0700 directory whose socket path fits in sockaddr_un."""
    directory = tempfile.mkdtemp(prefix="watchreload-agent-")
    if len(os.fsencode(os.path.join(directory, SOCKET_NAME))) <= MAX_SUN_PATH_BYTES:
        return directory
    os.rmdir(directory)  # TMPDIR is too deep for a socket path
    return tempfile.mkdtemp(prefix="watchreload-agent-", dir="/tmp")


class AgentChannel:
    """Receives the agents' reports and keeps what the current start of the child reported."""

    def __init__(self) -> None:
        ensure_bootstrap_bytecode()
        self.directory = Path(_socket_directory())
        self.socket_path = self.directory / SOCKET_NAME
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.bind(os.fspath(self.socket_path))
        self._passcred = hasattr(socket, "SO_PASSCRED")
        if self._passcred:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._lock = threading.Lock()
        self._run = 0
        self._imported: set[Path] = set()
        self._failed: set[Path] = set()
        self._listening: Address | None = None
        self._listening_at: float | None = None
        self._pids: set[int] = set()
        self._warned = False
        self.skipped = 0  # datagrams dropped as malformed or forged, over the channel's life
        self._reader: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._closed = False

    # -- per start ---------------------------------------------------------------------------

    @property
    def run(self) -> int:
        return self._run

    def start_run(
        self, command: Sequence[str], env: Mapping[str, str], *, shell: bool = False
    ) -> dict[str, str]:
        """Forget the last start's reports; return the variables to add for this start."""
        with self._lock:
            self._run += 1
            self._imported = set()
            self._failed = set()
            self._listening = None
            self._listening_at = None
            self._pids = set()
        return self.environment_for(command, env, shell=shell)

    def environment_for(
        self, command: Sequence[str], env: Mapping[str, str], *, shell: bool = False
    ) -> dict[str, str]:
        """The variables to add to `env` for the current start; {} for a non-Python command."""
        return environment_for(command, env, self.socket_path, self._run, shell=shell)

    # -- what the current start reported -----------------------------------------------------

    def imported_files(self) -> set[Path]:
        with self._lock:
            return set(self._imported)

    def failed_files(self) -> set[Path]:
        with self._lock:
            return set(self._failed)

    def listening(self) -> Address | None:
        """(host, port) of the first TCP socket a process of this start listened on."""
        with self._lock:
            return self._listening

    def listening_seen_at(self) -> float | None:
        """time.monotonic() when that address arrived."""
        with self._lock:
            return self._listening_at

    def reporting_pids(self) -> set[int]:
        with self._lock:
            return set(self._pids)

    # -- reading -----------------------------------------------------------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

    def drain(self) -> int:
        """Read every queued datagram without blocking; return how many reports were accepted."""
        accepted = 0
        while True:
            try:
                data, ancillary, flags, _ = self._sock.recvmsg(
                    MAX_DATAGRAM_BYTES + 1, socket.CMSG_SPACE(_UCRED.size)
                )
            except (BlockingIOError, InterruptedError):
                return accepted
            except OSError:
                if self._closed:
                    return accepted
                raise
            try:
                self._accept(
                    data, self._sender(ancillary), truncated=bool(flags & socket.MSG_TRUNC)
                )
            except Malformed as exc:
                self._skip(str(exc))
            else:
                accepted += 1

    def start_reader(self) -> None:
        """Read in a daemon thread until close(), so that the senders' queue never fills."""
        if self._reader is None:
            self._reader = threading.Thread(
                target=self._read_loop, name="watchreload-agent-channel", daemon=True
            )
            self._reader.start()

    def _read_loop(self) -> None:
        while not self._closed:
            ready, _, _ = select.select([self._sock.fileno(), self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                self.drain()
            except OSError as exc:
                logger.error("agent channel: stopped reading reports: %s", exc)
                return

    def close(self) -> None:
        """Stop the reader, close the socket and remove its directory."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        if self._reader is not None:
            self._reader.join(5)
        self._sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> AgentChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- one datagram ------------------------------------------------------------------------

    def _sender(self, ancillary: list[tuple[int, int, bytes]]) -> tuple[int, int] | None:
        """(pid, uid) of the sending process as the kernel says, where it says."""
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == getattr(socket, "SCM_CREDENTIALS", None):
                pid, uid, _gid = _UCRED.unpack(data[: _UCRED.size])
                return pid, uid
        return None

    def _accept(self, data: bytes, sender: tuple[int, int] | None, truncated: bool) -> None:
        if truncated or len(data) > MAX_DATAGRAM_BYTES:
            raise Malformed(f"a report longer than {MAX_DATAGRAM_BYTES} bytes")
        try:
            report = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise Malformed(f"a report that is not JSON ({type(exc).__name__})") from exc
        if not isinstance(report, dict):
            raise Malformed("a report that is not a JSON object")
        if report.get("v") != PROTOCOL_VERSION:
            raise Malformed(f"a report of protocol version {report.get('v')!r}, not 1")
        pid = report.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise Malformed(f"a report with pid {pid!r}")
        if sender is not None and (sender[0] != pid or sender[1] not in (os.getuid(), 0)):
            raise Malformed(f"a forged report: it says pid {pid}, the kernel says {sender[0]}")
        run = report.get("run")
        if not isinstance(run, int) or isinstance(run, bool):
            raise Malformed(f"a report with run {run!r}")
        modules = _paths(report.get("modules", []), "modules")
        failed = _paths(report.get("failed", []), "failed")
        listen = _address(report.get("listen"))
        with self._lock:
            if run != self._run:
                logger.debug(
                    "skipping a report of start %r from pid %d (now %d)", run, pid, self._run
                )
                return
            self._pids.add(pid)
            self._imported.update(modules)
            self._failed.difference_update(modules)
            self._failed.update(failed)
            self._imported.difference_update(failed)
            if listen is not None and self._listening is None:
                self._listening = listen
                self._listening_at = time.monotonic()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "pid %d: %d imported, %d failed%s",
                pid,
                len(modules),
                len(failed),
                f", listening on {listen[0]}:{listen[1]}" if listen else "",
            )

    def _skip(self, reason: str) -> None:
        self.skipped += 1
        if self._warned:
            logger.debug("agent channel: skipping %s", reason)
        else:
            self._warned = True
            logger.warning(
                "agent channel: skipping %s (any later ones are logged at DEBUG)", reason
            )


def _paths(value: object, key: str) -> list[Path]:
    if not isinstance(value, list):
        raise Malformed(f"a report whose {key!r} is not a list")
    paths = []
    for item in value:
        if (
            not isinstance(item, str)
            or not item.startswith("/")
            or "\0" in item
            or len(item) > MAX_PATH_CHARS
        ):
            raise Malformed(
                f"a report whose {key!r} holds {str(item)[:80]!r}, not an absolute path"
            )
        paths.append(Path(os.path.normpath(item)))
    return paths


def _address(value: object) -> Address | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], str)
        or not 0 < len(value[0]) <= 255
        or not isinstance(value[1], int)
        or isinstance(value[1], bool)
        or not 0 <= value[1] <= 65535
    ):
        raise Malformed(f"a report whose 'listen' is {str(value)[:80]!r}, not [host, port]")
    return value[0], value[1]


@contextlib.contextmanager
def open_channel() -> Iterator[AgentChannel]:
    """An AgentChannel with its reader thread running, closed on exit."""
    channel = AgentChannel()
    try:
        channel.start_reader()
        yield channel
    finally:
        channel.close()
