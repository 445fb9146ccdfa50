"""The agent's work in a supervised Python process: what it imports, what fails, where it listens.

`bootstrap/sitecustomize.py` loads this file by its path (watchreload need not be importable in
the child's interpreter), outside `sys.modules`, and calls `start()`. No thread: a finder first in
`sys.meta_path` notes every name the import system looks for and returns None, and one last in it
notes the names no finder has. A report is sent from the first at most every FLUSH_INTERVAL_S,
from a `gc` callback, when a socket starts listening, and at exit; each diffs `sys.modules`
against what was already sent, and a name looked for, found, and not in `sys.modules` is a failed
import. It imports nothing but built-in modules, `__future__` and `_socket`, and runs on Python
3.7 and newer, so it avoids newer syntax.

The program sees two finders at the ends of `sys.meta_path`, a `sys.excepthook` noting a
SyntaxError's file, a `gc.callbacks` entry, an atexit function and `socket.socket.listen` wrapped
until the first TCP socket listens (its report waits up to LISTEN_SEND_TIMEOUT_S for room). A
fork child reports with its own pid; without the socket the agent takes its hooks out.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType
    from typing import Any

PROTOCOL_VERSION = 1
SOCKET_ENV = "WATCHRELOAD_AGENT_SOCKET"
RUN_ENV = "WATCHRELOAD_AGENT_RUN"
FLUSH_INTERVAL_S = 0.25
DATAGRAM_LIMIT_BYTES = 32 * 1024  # well under the default socket send buffer (208 KiB)
BACKLOG_LIMIT = 64  # reports kept while the receiver's queue is full
EXIT_SEND_TIMEOUT_S = 1.0
LISTEN_SEND_TIMEOUT_S = 0.25  # the listening address waits this long for room in the queue

# JSON string escapes for the characters JSON forbids raw; str.translate applies them in C.
_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"


def _json_string(text: str) -> str:
    if text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'  # the usual path: nothing to escape
    return '"' + text.translate(_ESCAPES) + '"'


def _encode(report: str) -> bytes:
    # Lone surrogates (undecodable bytes of a file name) become \udcXX escapes, which JSON allows.
    return report.encode("utf-8", "backslashreplace")


def _spec_file(spec: Any) -> str | None:
    """The file a module was (or would be) loaded from (a zip import's archive), or None."""
    if spec is None or not getattr(spec, "has_location", False):
        return None
    if type(spec.loader).__name__ == "zipimporter":
        archive = getattr(spec.loader, "archive", None)
        return archive if isinstance(archive, str) else None
    return spec.origin if isinstance(spec.origin, str) else None


class _Agent:
    """The per-process state: what was reported, what is waiting, and the socket."""

    def __init__(self, address: str, run: int, bootstrap_dir: str) -> None:
        self.address = address
        self.run = run
        self.bootstrap_dir = bootstrap_dir  # what this process imports from it is not reported
        self.seen: set[str] = set()  # names of sys.modules already looked at
        self.sent_files: set[str] = set()
        self.looked_up: list[tuple[str, Any]] = []  # (name, path) the import system asked for
        self.failed: list[str] = []  # files of modules whose import raised
        self.listen: tuple[str, int] | None = None
        self.listen_sent = False
        self.backlog: list[bytes] = []
        self.sock: Any = None
        self.next_flush = 0.0
        self.flushing = False
        self.disabled = False
        self.finder = _Finder(self)
        self.last_finder = _NotFound(self)
        self.not_found: set[str] = set()  # looked for, and no finder had it
        self.pending_names = False

    # -- hooks ------------------------------------------------------------------------------

    def install(self) -> None:
        self.next_flush = time.monotonic() + FLUSH_INTERVAL_S  # none while site is still running
        sys.meta_path.insert(0, self.finder)
        sys.meta_path.append(self.last_finder)
        gc.callbacks.append(self.on_gc)
        atexit.register(self.at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self.after_fork)
        previous_hook = sys.excepthook

        def excepthook(
            kind: type[BaseException], value: BaseException, tb: TracebackType | None
        ) -> None:
            if isinstance(value, SyntaxError) and value.filename:
                self.failed.append(value.filename)
            previous_hook(kind, value, tb)

        sys.excepthook = excepthook
        socket_module = sys.modules.get("socket")
        if socket_module is not None:
            _patch_listen(socket_module, self)

    def uninstall(self) -> None:
        self.disabled = True
        for finder in (self.finder, self.last_finder):
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
        if self.on_gc in gc.callbacks:
            gc.callbacks.remove(self.on_gc)

    def on_gc(self, phase: str, info: object) -> None:
        due = self.pending_names or self.backlog  # new imports, or reports that found no room
        if phase == "stop" and due and time.monotonic() >= self.next_flush:
            self.flush()

    def after_fork(self) -> None:
        self.flushing = False  # a fork taken while another thread was sending

    def at_exit(self) -> None:
        self.flush(final=True)
        self.uninstall()  # nothing is sent while the interpreter is torn down

    # -- reports ----------------------------------------------------------------------------

    def flush(self, final: bool = False) -> None:
        if self.flushing or self.disabled:
            return
        self.flushing = True
        try:
            self._flush(final)
        except Exception as exc:  # never break the program: stop reporting, say so once
            self.uninstall()
            sys.stderr.write(f"watchreload agent: stopped reporting after an error: {exc!r}\n")
        finally:
            self.flushing = False

    def _flush(self, final: bool) -> None:
        self.next_flush = time.monotonic() + FLUSH_INTERVAL_S
        self.pending_names = False
        modules, failed = self.collect(final)
        listen = None
        if self.listen is not None and not self.listen_sent:
            listen = self.listen
            self.listen_sent = True
        self.backlog.extend(self.reports(modules, failed, listen))
        self.send(EXIT_SEND_TIMEOUT_S if final else LISTEN_SEND_TIMEOUT_S if listen else 0.0)

    def collect(self, final: bool) -> tuple[list[str], list[str]]:
        modules: list[str] = []
        cwd = None
        mine = self.bootstrap_dir + os.sep
        for name in list(sys.modules):
            if name in self.seen:
                continue
            module = sys.modules.get(name)
            if name in ("__main__", "__mp_main__"):
                # A script's __main__ has no __spec__; __file__ is removed when the script ends.
                filename = getattr(module, "__file__", None)
                if not isinstance(filename, str) and final and name == "__main__" and sys.argv:
                    filename = sys.argv[0]
                if not isinstance(filename, str) or not os.path.isfile(filename):
                    if not final:
                        continue  # not set yet (-m), or not a file ('<stdin>', -c): look again
                    filename = None
            else:
                filename = _spec_file(getattr(module, "__spec__", None))
            self.seen.add(name)
            if filename is None or filename.startswith(mine):
                continue
            if not filename.startswith("/"):
                cwd = cwd or os.getcwd()
                filename = os.path.join(cwd, filename)
            if filename not in self.sent_files:
                self.sent_files.add(filename)
                modules.append(filename)
        failed = self.failed_files(final)
        return modules, failed

    def failed_files(self, final: bool) -> list[str]:
        """Files of modules that were looked for by an import and are not in sys.modules."""
        count = len(self.looked_up)
        looked_up = self.looked_up[:count]
        del self.looked_up[:count]
        failed = [f for f in self.failed if f.startswith("/") or os.path.isfile(f)]
        del self.failed[:]
        not_found, self.not_found = self.not_found, set()
        if sys.meta_path and sys.meta_path[-1] is not self.last_finder:
            # A finder appended since: keep ours last, so that it only sees what none has.
            sys.meta_path.remove(self.last_finder)
            sys.meta_path.append(self.last_finder)
        for name, path in looked_up:
            if name in sys.modules or name in not_found:
                continue
            if not final and _importing(name):  # found, not in sys.modules yet (a C module's init)
                self.looked_up.append((name, path))
                continue
            filename = _spec_file(self.find_elsewhere(name, path))
            if filename is not None:
                failed.append(filename)
        failed = [os.path.abspath(f) for f in failed]
        for filename in failed:
            # Sent again later if it imports after all (a retry), which moves it back.
            self.sent_files.discard(filename)
        return failed

    def find_elsewhere(self, name: str, path: Any) -> Any:
        """The spec the other finders give for name, as importlib.util.find_spec would."""
        for finder in list(sys.meta_path):
            if finder is self.finder or finder is self.last_finder:
                continue
            try:
                spec = finder.find_spec(name, path)
            except Exception:  # a finder that cannot answer; the import itself said why
                continue
            if spec is not None:
                return spec
        return None

    def reports(
        self, modules: list[str], failed: list[str], listen: tuple[str, int] | None
    ) -> list[bytes]:
        head = f'{{"v":{PROTOCOL_VERSION},"run":{self.run},"pid":{os.getpid()}'
        out: list[bytes] = []
        parts: dict[str, list[str]] = {"modules": [], "failed": []}
        size = len(head)

        def close() -> None:
            body = head
            for key in ("modules", "failed"):
                if parts[key]:
                    body += f',"{key}":[{",".join(parts[key])}]'
                    parts[key] = []
            if listen is not None and not out:
                body += f',"listen":[{_json_string(listen[0])},{listen[1]:d}]'
            out.append(_encode(body + "}\n"))

        for key, files in (("modules", modules), ("failed", failed)):
            for filename in files:
                item = _json_string(filename)
                if size + len(item) + 16 > DATAGRAM_LIMIT_BYTES:
                    close()
                    size = len(head)
                parts[key].append(item)
                size += len(item) + 1
        if parts["modules"] or parts["failed"] or (listen is not None and not out):
            close()
        return out

    def send(self, timeout_s: float) -> None:
        try:
            if self.sock is None:
                import _socket

                self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
            self.sock.settimeout(timeout_s)
            while self.backlog:
                self.sock.sendto(self.backlog[0], self.address)
                del self.backlog[0]
        except (BlockingIOError, InterruptedError, TimeoutError):
            del self.backlog[:-BACKLOG_LIMIT]  # the receiver is busy: try again next time
        except OSError:
            self.uninstall()  # watchreload is gone (or never listened): stop reporting
            if self.sock is not None:
                self.sock.close()


def _importing(name: str) -> bool:
    """True while a thread holds the import lock of module `name`."""
    locks = getattr(sys.modules.get("_frozen_importlib"), "_module_locks", None)
    ref = locks.get(name) if isinstance(locks, dict) else None
    lock = ref() if ref is not None else None
    # A lock kept alive by a traceback of a failed import is released: its count is 0 or [].
    return lock is not None and bool(getattr(lock, "count", 0))


class _Finder:
    """First in sys.meta_path: notes what is looked for and lets the real finders answer."""

    def __init__(self, agent: _Agent) -> None:
        self.agent = agent
        self.hooking_socket = False

    def __repr__(self) -> str:
        return "<watchreload agent finder>"

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: Any = None
    ) -> Any:
        agent = self.agent
        if time.monotonic() >= agent.next_flush:
            agent.flush()  # before noting this name, which is not in sys.modules yet
        agent.pending_names = True
        try:
            # importlib.util.find_spec (a probe, as in Django's module_has_submodule) is no import.
            if sys._getframe(2).f_code.co_name != "find_spec":
                agent.looked_up.append((fullname, path))
        except ValueError:
            pass
        if fullname == "socket" and not self.hooking_socket:
            return self.socket_spec(path, target)
        return None

    def socket_spec(self, path: Sequence[str] | None, target: Any) -> Any:
        """socket's own spec, with a loader that wraps socket.socket.listen once it has run."""
        self.hooking_socket = True
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec: Any = finder.find_spec("socket", path, target)
                if spec is not None:
                    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                        spec.loader = _ListenHookLoader(spec.loader, self.agent)
                    return spec
            return None
        finally:
            self.hooking_socket = False


class _NotFound:
    """Last in sys.meta_path: asked only for what no other finder has (ModuleNotFoundError)."""

    def __init__(self, agent: _Agent) -> None:
        self.agent = agent

    def __repr__(self) -> str:
        return "<watchreload agent not-found finder>"

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        self.agent.not_found.add(fullname)


class _ListenHookLoader:
    """Runs socket's own loader, then wraps listen and puts the real loader back."""

    def __init__(self, loader: Any, agent: _Agent) -> None:
        self.loader = loader
        self.agent = agent

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__spec__.loader = module.__loader__ = self.loader
        self.loader.exec_module(module)
        _patch_listen(module, self.agent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


def _patch_listen(socket_module: Any, agent: _Agent) -> None:
    """Report the address of the first TCP socket to listen, then take the wrapper away."""
    cls = getattr(socket_module, "socket", None)
    if cls is None or "listen" in vars(cls):
        return
    inet = (socket_module.AF_INET, getattr(socket_module, "AF_INET6", None))
    original: Callable[..., None] = cls.listen

    def listen(self: Any, *args: int) -> None:
        original(self, *args)
        if agent.listen is not None or self.family not in inet:
            return
        try:
            address = self.getsockname()
        except OSError:
            return
        agent.listen = (str(address[0]), int(address[1]))
        if cls.__dict__.get("listen") is listen:
            del cls.listen
        agent.flush()

    listen.__name__ = "listen"
    listen.__qualname__ = cls.__qualname__ + ".listen"
    listen.__doc__ = original.__doc__
    listen.__wrapped__ = original  # type: ignore[attr-defined]
    cls.listen = listen


def start(bootstrap_dir: str) -> _Agent | None:
    """Install the agent when the environment names a socket; return it (None otherwise)."""
    address = os.environ.get(SOCKET_ENV)
    run = os.environ.get(RUN_ENV, "0")
    if not address or not run.isdigit():
        return None
    agent = _Agent(address, int(run), bootstrap_dir)
    agent.install()
    return agent
