"""The fork-safety gate: one thread, no descriptors opened by preloading, no event loop.

Runs inside the template (standard library only). `Gate` takes a baseline before preloading;
`check()` says what is unsafe now, and `Gate.after(name)` names what one preload import did, so
that the culprit can be named and left out; `thread_starts()` tells which module's top-level code
started a thread (the module that did it, not the one that imported it). A new socket, pipe,
epoll or other anonymous inode is unsafe (the children would share it); a new regular file is
only noted.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

_FD_DIRS = ("/proc/self/fd", "/dev/fd")
_UNSAFE_FD_PREFIXES = ("socket:", "pipe:", "anon_inode:")


def thread_count() -> int:
    """Kernel threads of this process (native ones too); Python threads where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    threading = sys.modules.get("threading")
    return int(threading.active_count()) if threading is not None else 1


def open_fds() -> dict[int, str]:
    """Open descriptors and what they point to (the listing's own descriptor left out)."""
    for directory in _FD_DIRS:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        fds = {}
        for name in names:
            try:
                fds[int(name)] = os.readlink(os.path.join(directory, name))
            except (OSError, ValueError):
                continue  # the listing's own descriptor, closed by now
        return fds
    return {}


def event_loop_problem() -> str | None:
    """Why asyncio's state would leak into a child (3.11 does not reset it at fork), or None."""
    events = sys.modules.get("asyncio.events")
    if events is None:
        return None
    if events._get_running_loop() is not None:
        return "an asyncio event loop is running"
    policy = getattr(events, "_event_loop_policy", None)
    local = getattr(policy, "_local", None)
    if getattr(local, "_loop", None) is not None:
        return "an asyncio event loop was created"
    return None


@dataclass
class Finding:
    """What one preload import did that matters for fork safety."""

    unsafe: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Gate:
    """The baseline taken before preloading, and checks against it."""

    def __init__(self, own_fds: tuple[int, ...] = ()) -> None:
        self._own = set(own_fds)
        self.baseline = open_fds()
        self._threads = thread_count()
        self._fds = dict(self.baseline)
        self._loop = event_loop_problem()

    def allow(self, *fds: int) -> None:
        """Descriptors the template itself opened after the baseline."""
        self._own.update(fds)

    def after(self, name: str) -> Finding:
        """What importing `name` changed since the previous call (or the baseline)."""
        finding = Finding()
        threads = thread_count()
        if threads > self._threads:
            finding.unsafe.append(f"{name} started {threads - self._threads} thread(s)")
        self._threads = max(threads, 1)
        fds = open_fds()
        for fd, target in sorted(fds.items()):
            if self._fds.get(fd) == target or fd in self._own:
                continue
            text = f"{name} opened fd {fd} ({target})"
            (finding.unsafe if target.startswith(_UNSAFE_FD_PREFIXES) else finding.notes).append(
                text
            )
        self._fds = fds
        loop = event_loop_problem()
        if loop is not None and loop != self._loop:
            finding.unsafe.append(f"{name}: {loop}")
        self._loop = loop
        return finding

    def check(self) -> str | None:
        """Why forking now would be unsafe, or None: compared with the baseline, not the last."""
        threads = thread_count()
        if threads != 1:
            return f"the template runs {threads} threads"
        for fd, target in sorted(open_fds().items()):
            if fd in self._own or self.baseline.get(fd) == target:
                continue
            if target.startswith(_UNSAFE_FD_PREFIXES):
                return f"the template holds fd {fd} ({target}) opened while preloading"
        return event_loop_problem()


# Where Python threads start: `_thread`'s function, bound by `threading` under these names.
_THREAD_STARTERS = ("start_new_thread", "_start_new_thread", "_start_joinable_thread")


def _importing_module() -> str | None:
    """The module whose top-level code (a `<module>` frame) is running, innermost first."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "<module>":
            name = frame.f_globals.get("__name__")
            return name if isinstance(name, str) else None
        frame = frame.f_back
    return None


@contextlib.contextmanager
def thread_starts(starters: list[str]) -> Iterator[None]:
    """While inside, append to `starters` the module whose import starts each thread."""
    import _thread

    original = _thread.start_new_thread
    patched: list[tuple[Any, str, Any]] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        name = _importing_module()
        if name is not None:
            starters.append(name)
        return original(*args, **kwargs)

    def patch_where_bound() -> None:
        for holder in (_thread, sys.modules.get("threading")):
            for attr in _THREAD_STARTERS:
                if holder is not None and getattr(holder, attr, None) is original:
                    patched.append((holder, attr, original))
                    setattr(holder, attr, recording)

    patch_where_bound()
    try:
        yield
    finally:
        for holder, attr, value in patched:
            setattr(holder, attr, value)
        threading = sys.modules.get("threading")  # imported meanwhile: it bound the recorder
        for attr in _THREAD_STARTERS:
            if threading is not None and getattr(threading, attr, None) is recording:
                setattr(threading, attr, original)
