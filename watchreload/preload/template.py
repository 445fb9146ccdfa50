"""The template process: preload stable modules, freeze, then fork one child per request.

Started by `client.Template.start()` as `<command's python> <its flags> -c BOOTSTRAP DIR FD`, in
the command's environment and cwd. BOOTSTRAP loads this file and its siblings as the private
package `_watchreload_preload` from DIR (they use the standard library only), so that the
template needs no watchreload installed in the command's interpreter and puts no `watchreload`
into the children's `sys.modules`. FD is one end of a socketpair; both sides send JSON lines.

    client → template   {"op": "config", ...}   once, first
                        {"op": "fork", <child.Request>}    {"op": "stop"}
    template → client   {"op": "ready", ...} or {"op": "unsafe", ...} (then it exits)
                        {"op": "forked", "pid": N} or {"op": "refused", "reason": ...}
                        {"op": "exit", "pid": N, "returncode": RC}   (Popen's convention)
                        {"op": "stopped", "pid": N, "signal": SIGTSTP... or None (continued)}

The template reaps its children and reports their statuses. EOF on FD (the client is gone), a
"stop", or the parent-death signal (Linux) make it SIGKILL its children's process groups, reap
them within a bound, and exit. It ignores the keyboard and hangup signals: the supervisor decides.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

from . import child, origins, safety, staleness

BOOTSTRAP = (
    "import sys, types, importlib\n"
    "p = types.ModuleType('_watchreload_preload'); p.__path__ = [sys.argv[1]]\n"
    "sys.modules['_watchreload_preload'] = p\n"
    "importlib.import_module('_watchreload_preload.template').main(int(sys.argv[2]))\n"
)
# Signals the supervisor acts on for the template (it is in the supervisor's process group).
IGNORED = ("SIGINT", "SIGQUIT", "SIGHUP", "SIGTSTP", "SIGTTIN", "SIGTTOU")
REAP_TIMEOUT_S = 5.0


class ParentGone(BaseException):
    """The supervisor died: stop everything (a BaseException, so that no import swallows it)."""


class Channel:
    """JSON lines over one socket descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""
        self.closed = False

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            self.closed = True

    def receive(self) -> Iterator[dict[str, Any]]:
        """The messages one read brings (blocking for it); sets `closed` at EOF."""
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)

    def receive_one(self) -> dict[str, Any] | None:
        while not self.closed:
            for message in self.receive():
                return message
        return None


def initial_signals() -> dict[int, Any]:
    """The dispositions this interpreter started with: what exec would give the command."""
    found = {}
    for signum in signal.valid_signals():
        try:
            found[int(signum)] = signal.getsignal(signum)
        except (OSError, ValueError):
            continue
    return found


def _on_term(parent: int) -> Any:
    def handler(signum: int, frame: Any) -> None:
        if os.getppid() != parent:
            raise ParentGone
        # The supervisor is alive: a SIGTERM to its group is for it to act on.

    return handler


def _set_path0(path0: str | None) -> None:
    """Make `sys.path[0]` the command's (`-c` put "" there unless -I/-P kept it out)."""
    if sys.path and sys.path[0] == "" and path0 is not None:
        sys.path[0] = path0


def _excluded(name: str, exclude: list[str]) -> bool:
    return any(name == e or name.startswith(e + ".") for e in exclude)


def _import_step(name: str, blocker: origins.Blocker, undone: dict[str, list[str]]) -> str | None:
    """Import `name`; the failure, if any. A step during which the blocker refused a module is
    undone (every module it added leaves `sys.modules`): a module that caught the refusal may
    have cached the absence of a project module that the child will find."""
    before, refusals = set(sys.modules), len(blocker.refused)
    error = None
    try:
        importlib.import_module(name)
    except (Exception, SystemExit) as exc:
        error = f"{type(exc).__name__}: {exc}"
    refused = blocker.refused[refusals:]
    if refused:
        added = [n for n in sys.modules if n not in before]
        origins.forget(added)
        if added:
            undone[name] = sorted(set(refused))
    return error


def preload(config: dict[str, Any], gate: safety.Gate) -> dict[str, Any]:
    """Import the preload list; what failed, what was unsafe and who did it, what was purged."""
    places = origins.Origins(origins.stable_roots() + config["stable"], config["volatile"])
    failed: dict[str, str] = {}
    culprits: dict[str, str] = {}
    undone: dict[str, list[str]] = {}
    notes: list[str] = []
    names = list(config["preload"]) + origins.module_names(config.get("preload_files", []))
    starters: list[str] = []
    blocker = origins.Blocker(places, config["exclude"])
    with blocker, safety.thread_starts(starters):
        for name in names:
            if name in sys.modules or _excluded(name, config["exclude"]):
                continue
            started = len(starters)
            error = _import_step(name, blocker, undone)
            if error is not None:
                failed[name] = error
            culprit = starters[-1] if len(starters) > started else name  # who started it
            finding = gate.after(culprit)
            if finding.unsafe:
                culprits[culprit] = "; ".join(finding.unsafe)
            notes.extend(finding.notes)
    purged = origins.purge(places)
    return {
        "failed": failed,
        "culprits": culprits,
        "notes": notes,
        "refused": sorted(set(blocker.refused)),
        "undone": undone,
        "purged": purged,
    }


def loaded_files() -> list[str]:
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and os.path.isabs(path):
            files.add(path)
    return sorted(files)


class Server:
    """The fork loop, once preloading is done."""

    def __init__(
        self, channel: Channel, gate: safety.Gate, signals: tuple[dict[int, Any], list[int]]
    ) -> None:
        self.channel = channel
        self.gate = gate
        self.signals, self.mask = signals
        self.children: set[int] = set()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        gate.allow(self.wake_r, self.wake_w)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def serve(self) -> None:
        try:
            while not self.channel.closed:
                ready, _, _ = select.select([self.channel.fd, self.wake_r], [], [])
                if self.wake_r in ready:
                    self._drain_wakeups()
                self.reap()
                if self.channel.fd in ready and not self._handle_requests():
                    break
        except ParentGone:
            pass
        self.shutdown()

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _handle_requests(self) -> bool:
        for message in self.channel.receive():
            if message.get("op") == "stop":
                return False
            if message.get("op") == "fork":
                self.fork(child.Request.from_message(message))
        return not self.channel.closed

    def fork(self, request: child.Request) -> None:
        problem = self.gate.check()
        if problem is not None:
            self.channel.send({"op": "refused", "reason": problem})
            return
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        template_pid = os.getpid()
        # Signals wait (blocked) until the child has the dispositions exec would give it.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        pid = os.fork()
        if pid == 0:
            self._child(request, template_pid)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        # As the child does, so that the group exists whoever runs first (it may have exited).
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        self.children.add(pid)
        self.channel.send({"op": "forked", "pid": pid})

    def _child(self, request: child.Request, template_pid: int) -> None:
        status = 1
        try:
            child.restore_signals(self.signals, self.mask)
            child.become(request, template_pid, [self.channel.fd, self.wake_r, self.wake_w])
            status = child.run_main(request)
        except BaseException:
            traceback.print_exc()
        child.finish(status)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG | os.WUNTRACED | os.WCONTINUED)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if os.WIFSTOPPED(status) or os.WIFCONTINUED(status):  # for job control
                stop = os.WSTOPSIG(status) if os.WIFSTOPPED(status) else None
                self.channel.send({"op": "stopped", "pid": pid, "signal": stop})
                continue
            self.children.discard(pid)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            self.channel.send({"op": "exit", "pid": pid, "returncode": code})

    def shutdown(self) -> None:
        """SIGKILL what is left of the children's groups and reap them, boundedly."""
        for pid in list(self.children):
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                    break
                except OSError:
                    continue
        deadline = time.monotonic() + REAP_TIMEOUT_S
        while self.children and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.005)


def _start(channel: Channel) -> tuple[dict[str, Any], tuple[dict[int, Any], list[int]]]:
    """Read the config and take the parent-death and signal arrangements."""
    signals = initial_signals()
    mask = sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    for name in IGNORED:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    config = channel.receive_one()
    if config is None or config.get("op") != "config":
        raise ParentGone
    parent = int(config["parent"])
    signal.signal(signal.SIGTERM, _on_term(parent))
    child.set_parent_death_signal(signal.SIGTERM, parent)
    _set_path0(config.get("path0"))
    # What a module that reads sys.argv at import would see in the exec'd command.
    if config.get("argv"):
        sys.argv[:] = config["argv"]
    if config.get("orig_argv") and hasattr(sys, "orig_argv"):
        sys.orig_argv[:] = config["orig_argv"]
    return config, (signals, mask)


def main(fd: int) -> None:
    with contextlib.suppress(ParentGone):
        _main(Channel(fd))
    # Not the interpreter's exit: a culprit's thread could hold it, and the preloaded modules'
    # atexit handlers are the children's business.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)


def _main(channel: Channel) -> None:
    config, signals = _start(channel)
    began = time.monotonic()
    stable = staleness.environment_paths(origins.stable_roots() + config["stable"])
    stable_signatures = staleness.signatures(stable)
    gate = safety.Gate()
    outcome = preload(config, gate)
    problem = gate.check()
    files = loaded_files()
    outcome.update(
        pid=os.getpid(),
        seconds=time.monotonic() - began,
        # No zip(strict=): the command's Python may be older than 3.10.
        stable=list(zip(stable, stable_signatures)),  # noqa: B905
        files=list(zip(files, staleness.signatures(files))),  # noqa: B905
        version=sys.version,
    )
    if outcome["culprits"] or problem is not None:
        channel.send({"op": "unsafe", "reason": problem, **outcome})
        return
    channel.send({"op": "ready", **outcome})
    gc.collect()
    gc.freeze()
    gc.disable()
    Server(channel, gate, signals).serve()
