"""The supervisor's side of the template: start it, ask it to fork, know when it can't serve.

    template = Template.for_command(argv, env, cwd, preload=names, volatile_roots=roots)
    ...
    reason = template.why_not(argv, env, cwd)       # None, or why this restart must exec
    child = template.fork(argv, env, cwd) if reason is None else ChildProcess(argv, ...)
    child.stop(signal.SIGTERM, timeout_s)            # ForkedChild: the ChildProcess contract
    template.close()

The forked child is the template's child: the template reaps it and reports its returncode
(`{"op": "exit"}`), which `ForkedChild.poll()` reads; the supervisor signals the child's process
group directly, so a stop is as bounded as `ChildProcess.stop`. If the template dies, its
children die too (their parent-death signal), and `ForkedChild.poll()` says so. Use one Template
from one thread, the one that lives as long as it: the template's parent-death signal fires when
the thread that started it ends (Linux).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from watchreload.agent.channel import BOOTSTRAP_DIR, SOCKET_ENV, without_agent
from watchreload.errors import WatchreloadError
from watchreload.preload import inotify, launch, staleness
from watchreload.preload.forked import ForkedChild
from watchreload.preload.reasons import debugger_reason, describe_unsafe, mismatch, platform_reason
from watchreload.preload.template import BOOTSTRAP
from watchreload.process import KILL_WAIT_S, command_text

__all__ = ["ForkedChild", "Template", "TemplateUnavailable"]

logger = logging.getLogger(__name__)

FORK_REPLY_TIMEOUT_S = 5.0  # from a fork request to the template's answer
MAX_BUILDS = 3  # a build, then rebuilds that leave out the modules the gate named
PRELOAD_DIR = str(Path(__file__).resolve().parent)
State = Literal["building", "ready", "unsafe", "gone"]


class TemplateUnavailable(WatchreloadError):
    """The template cannot serve this restart; the message says why (exec instead)."""


class Template:
    """A template process for one (interpreter, flags, environment, cwd) and its preload list."""

    def __init__(
        self, process: subprocess.Popen[bytes], sock: socket.socket, key: dict[str, Any]
    ) -> None:
        self.process = process
        self.pid = process.pid
        self._sock = sock
        self.key = key
        self.state: State = "building"
        self.reason: str | None = "the template is still preloading"
        self.report: dict[str, Any] = {}
        self.fingerprint = staleness.Fingerprint(without_agent(key["env"]), _notifier())
        self.fingerprint.add("the project file", staleness.lock_files(key["project_dirs"]))
        self._buffer = b""
        self._replies: list[dict[str, Any]] = []
        self.statuses: dict[int, int] = {}
        self.stops: dict[int, int | None] = {}  # the stop signal holding a child now, or None
        self.stop_events: dict[int, list[int]] = {}  # each stop signal, until collected

    @classmethod
    def start(
        cls,
        interpreter: str,
        flags: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        preload: Sequence[str],
        *,
        path0: str | None,
        preload_files: Iterable[str] = (),
        volatile_roots: Iterable[str] = (),
        stable_roots: Iterable[str] = (),
        exclude: Iterable[str] = (),
        project_dirs: Iterable[str] | None = None,
        argv: Sequence[str] = (),
        orig_argv: Sequence[str] = (),
        builds: int = 1,
    ) -> Template:
        """Start a template (preloading runs in it, in the background); see `ready`.

        `preload` names modules; `preload_files` are files (the agent's report of the previous
        run), which the template turns into module names along its own `sys.path`.

        `volatile_roots` (the watched roots) and the script's directory, `cwd` and `PYTHONPATH`
        are never preloaded from; `stable_roots` adds directories to the interpreter's standard
        library and site-packages (a deeper root wins; at equal depth, stable). `argv` and
        `orig_argv` are `sys.argv` and `sys.orig_argv` while preloading.
        """
        ours, theirs = socket.socketpair()
        key: dict[str, Any] = {
            "interpreter": interpreter,
            "flags": list(flags),
            "env": dict(env),
            "cwd": cwd,
            "path0": path0,
            "exclude": sorted(set(exclude)),
            "project_dirs": list(project_dirs if project_dirs is not None else [cwd]),
            "builds": builds,
            "preload": list(preload),
            "preload_files": [str(p) for p in preload_files],
            "volatile_roots": list(volatile_roots),
            "stable_roots": [os.path.abspath(p) for p in stable_roots],
            "argv": list(argv),
            "orig_argv": list(orig_argv),
        }
        args = [interpreter, *flags, "-c", BOOTSTRAP, PRELOAD_DIR, str(theirs.fileno())]
        # Not the changes of one restart, nor the agent: every fork request brings its own (and
        # the agent's socket, opened while preloading, would fail the gate).
        template_env = staleness.stable_env(without_agent(env))
        try:
            process = subprocess.Popen(args, env=template_env, cwd=cwd, pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        template = cls(process, ours, key)
        template._send(**_config(key, template_env))
        return template

    @classmethod
    def for_command(
        cls,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        preload: Sequence[str],
        **options: Any,
    ) -> Template:
        """Start a template for the Python command `argv`; TemplateUnavailable if it isn't one."""
        parsed = launch.parse_command(argv, cwd, env.get("PATH"))
        if isinstance(parsed, str):
            raise TemplateUnavailable(parsed)
        options.setdefault("argv", parsed.argv())
        options.setdefault("orig_argv", parsed.orig_argv)
        return cls.start(
            parsed.interpreter, parsed.flags, env, cwd, preload, path0=parsed.path0(cwd), **options
        )

    # -- messages -------------------------------------------------------------------------------

    def _send(self, **message: Any) -> None:
        try:
            self._sock.sendall((json.dumps(message) + "\n").encode())
        except OSError:
            self._gone("the template's channel is closed")

    def pump(self, timeout_s: float = 0.0) -> None:
        """Read what the template sent, waiting up to `timeout_s` for the first of it."""
        if self.state == "gone" or self._sock.fileno() < 0:
            return
        ready, _, _ = select.select([self._sock], [], [], max(timeout_s, 0.0))
        while ready:
            try:
                chunk = self._sock.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._gone(self._exit_text())
                return
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                self._dispatch(json.loads(line))
            ready, _, _ = select.select([self._sock], [], [], 0)

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "exit":
            self.statuses[int(message["pid"])] = int(message["returncode"])
        elif op == "stopped":
            signum = message["signal"]
            pid = int(message["pid"])
            self.stops[pid] = None if signum is None else int(signum)
            if signum is not None:
                self.stop_events.setdefault(pid, []).append(int(signum))
        elif op in ("forked", "refused"):
            self._replies.append(message)
        elif op == "ready":
            self._on_ready(message)
        elif op == "unsafe":
            self.report = message
            self.state = "unsafe"
            self.reason = "the template is not fork-safe: " + describe_unsafe(message)
            logger.debug("preload: %s", self.reason)  # the caller says what it does about it

    def _on_ready(self, message: dict[str, Any]) -> None:
        self.report = message
        stable = message["stable"]
        self.fingerprint.add(
            "the interpreter file", [p for p, _ in stable], [_sig(s) for _, s in stable]
        )
        files = message["files"]
        self.fingerprint.add(
            "the preloaded file", [p for p, _ in files], [_sig(s) for _, s in files]
        )
        self.state, self.reason = "ready", None
        logger.debug(
            "preload: template %d ready in %.0f ms with %d files; %d modules failed, %d refused",
            self.pid,
            message["seconds"] * 1000,
            len(files),
            len(message["failed"]),
            len(message["refused"]),
        )

    def _gone(self, why: str) -> None:
        """The template no longer answers (after "unsafe" it exits: that state stays)."""
        if self.state != "unsafe":
            self.state, self.reason = "gone", why
        self._sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(KILL_WAIT_S)

    def _exit_text(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(KILL_WAIT_S)
        code = self.process.returncode
        status = "is still running" if code is None else f"exited with returncode {code}"
        return f"the template {status} and no longer answers"

    # -- the supervisor's questions -------------------------------------------------------------

    @property
    def ready(self) -> bool:
        self.pump(0)
        return self.state == "ready"

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the template is ready, or has failed, or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while self.state == "building" and time.monotonic() < deadline:
            self.pump(deadline - time.monotonic())
        return self.state == "ready"

    @property
    def culprits(self) -> dict[str, str]:
        """Modules the gate found unsafe (name → what they did)."""
        return dict(self.report.get("culprits", {}))

    def without_culprits(self) -> Template | None:
        """A new template that leaves out the culprits, or None (none, or builds used up)."""
        if not self.culprits or self.key["builds"] >= MAX_BUILDS:
            return None
        self.close()
        key = self.key
        return Template.start(
            key["interpreter"],
            key["flags"],
            key["env"],
            key["cwd"],
            key["preload"],
            path0=key["path0"],
            preload_files=key["preload_files"],
            volatile_roots=key["volatile_roots"],
            stable_roots=key["stable_roots"],
            exclude=[*key["exclude"], *self.culprits],
            project_dirs=key["project_dirs"],
            argv=key["argv"],
            orig_argv=key["orig_argv"],
            builds=key["builds"] + 1,
        )

    def unseen(self, files: Iterable[str | os.PathLike[str]]) -> set[str]:
        """Of `files` (what a later run imported), those outside the project that this template
        was neither asked to preload nor loaded: worth a new template when they are many."""
        known = set(self.key["preload_files"]) | {path for path, _ in self.report.get("files", ())}
        volatile = tuple(
            p.rstrip(os.sep) + os.sep for p in _config(self.key, self.key["env"])["volatile"]
        )
        return {str(f) for f in files if str(f) not in known and not str(f).startswith(volatile)}

    def why_not(self, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> str | None:
        """Why this restart of `argv` cannot be forked from the template, or None."""
        parsed = launch.parse_command(argv, cwd, env.get("PATH"))
        if isinstance(parsed, str):
            return parsed
        self.pump(0)
        if self.state != "ready":
            return self.reason
        return (
            platform_reason()
            or mismatch(self.key, parsed, cwd)
            or debugger_reason(parsed, env)
            or launch.script_problem(parsed, cwd)
            or self.fingerprint.changed(without_agent(env))
        )

    def fork(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        after_fork: Sequence[str] = (),
        *,
        guard: bool = False,
    ) -> ForkedChild:
        """Fork the command's process; TemplateUnavailable (with the reason) when it can't.

        With `guard`, a GroupWitness joins the child's group (see ForkedChild)."""
        reason = self.why_not(argv, env, cwd)
        if reason is not None:
            raise TemplateUnavailable(reason)
        parsed = launch.parse_command(argv, cwd, env.get("PATH"))
        assert not isinstance(parsed, str)  # why_not() checked it
        self._send(
            op="fork",
            mode=parsed.mode,
            target=parsed.target,
            argv=parsed.argv(),
            orig_argv=list(parsed.orig_argv),
            path0=parsed.path0(cwd),
            env=dict(env),
            cwd=cwd,
            after_fork=list(after_fork),
            agent=_agent_file(env),
        )
        reply = self._reply()
        if reply.get("op") != "forked":
            raise TemplateUnavailable(str(reply.get("reason", "the template refused to fork")))
        return ForkedChild(self, int(reply["pid"]), command_text(argv), guard=guard)

    def _reply(self) -> dict[str, Any]:
        deadline = time.monotonic() + FORK_REPLY_TIMEOUT_S
        while not self._replies and self.state == "ready" and time.monotonic() < deadline:
            self.pump(deadline - time.monotonic())
        if self._replies:
            return self._replies.pop(0)
        if self.state == "ready":
            self.close()
            return {"reason": f"the template did not answer within {FORK_REPLY_TIMEOUT_S:g}s"}
        return {"reason": self.reason}

    def close(self, timeout_s: float = KILL_WAIT_S) -> None:
        """Stop the template (it SIGKILLs what is left of its children first), boundedly."""
        if self.process.poll() is None and self.state == "building":
            self.process.kill()  # it reads requests only once it has preloaded; no children yet
            self.process.wait(KILL_WAIT_S)
        elif self.process.poll() is None:
            self._send(op="stop")
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("template %d did not stop; sending SIGKILL", self.pid)
                self.process.kill()
                self.process.wait(KILL_WAIT_S)
        self.pump(0)
        self._sock.close()
        self.fingerprint.close()
        if self.state != "unsafe":
            self.state, self.reason = "gone", "the template was stopped"


def _config(key: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The template's first message: what to preload, and from where not."""
    cwd, path0 = key["cwd"], key["path0"]
    volatile = [*key["volatile_roots"], *([path0] if path0 else []), cwd]
    volatile += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        "op": "config",
        "parent": os.getpid(),
        "path0": path0,
        "volatile": [os.path.abspath(os.path.join(cwd, p)) for p in volatile],
        **{
            name: key[name] for name in ("preload", "preload_files", "exclude", "argv", "orig_argv")
        },
        "stable": key["stable_roots"],
    }


def _agent_file(env: Mapping[str, str]) -> str | None:
    """The agent's sitecustomize when `env` has the agent (its socket, its directory first)."""
    first = env.get("PYTHONPATH", "").split(os.pathsep)[0]
    if SOCKET_ENV not in env or not first or os.path.abspath(first) != str(BOOTSTRAP_DIR):
        return None
    return str(BOOTSTRAP_DIR / "sitecustomize.py")


def _sig(value: Sequence[int] | None) -> staleness.Signature | None:
    return None if value is None else (value[0], value[1], value[2], value[3])


def _notifier() -> staleness.Notifier | None:
    if not inotify.available():
        return None
    try:
        return inotify.Inotify()
    except OSError as exc:
        logger.debug("preload: no inotify (%s); the staleness check stats every file", exc)
        return None
