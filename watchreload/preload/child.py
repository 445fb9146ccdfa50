"""The forked child's side: become what `exec` would have made, run `__main__`, exit like Python.

Runs inside the template's child, right after `os.fork()` (standard library only). What an
exec'd `python [flags] script.py args` or `python -m pkg args` gets, the child gets too: its own
process group, the signal dispositions and mask the interpreter started with, the request's
environment, cwd, `sys.argv`, `sys.orig_argv` and `sys.path[0]`, a fresh `__main__` (`__file__`,
`__spec__`, `__loader__`), reseeded `random`, and on the way out the interpreter's shutdown
order (non-daemon threads joined, atexit handlers, stdio flushed) and exit status (the
`SystemExit` code, 1 for an uncaught exception, death by SIGINT for an uncaught
KeyboardInterrupt). The one thing it cannot change is the string hash seed, which is the
template's.
"""

from __future__ import annotations

import builtins
import gc
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.machinery import SourceFileLoader
from types import TracebackType
from typing import Any

PR_SET_PDEATHSIG = 1


@dataclass
class Request:
    """One fork request, as the client sends it."""

    mode: str  # "script" or "module"
    target: str
    argv: list[str]
    orig_argv: list[str]
    path0: str | None
    env: dict[str, str]
    cwd: str
    after_fork: list[str] = field(default_factory=list)  # "module:function" names
    agent: str | None = None  # the agent's sitecustomize.py, when this start has the agent

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> Request:
        return cls(
            mode=str(message["mode"]),
            target=str(message["target"]),
            argv=[str(a) for a in message["argv"]],
            orig_argv=[str(a) for a in message["orig_argv"]],
            path0=None if message.get("path0") is None else str(message["path0"]),
            env={str(k): str(v) for k, v in dict(message["env"]).items()},
            cwd=str(message["cwd"]),
            after_fork=[str(a) for a in message.get("after_fork", [])],
            agent=None if message.get("agent") is None else str(message["agent"]),
        )


def set_parent_death_signal(signum: int, parent: int) -> None:
    """Linux: get `signum` when `parent` dies (and now, if it already has)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)


def restore_signals(initial: Mapping[int, Any], mask: Sequence[int]) -> None:
    """The dispositions and mask the interpreter started with (exec would give those)."""
    signal.set_wakeup_fd(-1)
    for signum, handler in initial.items():
        if handler is not None and signal.getsignal(signum) is not handler:
            signal.signal(signum, handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def become(request: Request, parent: int, close: Sequence[int]) -> None:
    """Turn the freshly forked process into the command's process, up to running `__main__`."""
    os.setpgid(0, 0)
    set_parent_death_signal(signal.SIGKILL, parent)
    for fd in close:
        os.close(fd)
    os.environ.clear()
    os.environ.update(request.env)
    os.chdir(request.cwd)
    sys.argv[:] = request.argv
    if hasattr(sys, "orig_argv"):
        sys.orig_argv[:] = request.orig_argv
    if request.path0 is not None:
        sys.path[0] = request.path0
    random = sys.modules.get("random")
    if random is not None:
        random.seed()
    gc.enable()
    if request.agent is not None:
        start_agent(request.agent)
    for name in request.after_fork:
        module, _, function = name.partition(":")
        getattr(importlib.import_module(module), function)()


def start_agent(path: str) -> None:
    """Start watchreload's agent as `site` would have (the template ran without it).

    Its sitecustomize acts only when imported as `sitecustomize` and then chains the user's,
    which `site` already ran in the template: so it is loaded under another name and started
    with its `_start()`, then kept as `_watchreload_agent` (and as `sitecustomize` when the user
    has none), as its `_chain()` leaves it. It reports everything in `sys.modules`, the
    preloaded modules included, as it would have in an exec'd child.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("_watchreload_agent_fork", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    getattr(module, "_start", lambda: None)()
    report = getattr(module, "agent", None)
    if report is not None:  # the template's own modules are no import of the program's
        package = __name__.rpartition(".")[0]  # _watchreload_preload, as the template loads it
        report.seen.update(n for n in sys.modules if n.startswith(package + "."))
    sys.modules[str(getattr(module, "MODULE_NAME", "_watchreload_agent"))] = module
    sys.modules.setdefault("sitecustomize", module)


def _fresh_main() -> dict[str, Any]:
    """`__main__`'s namespace, emptied to what the interpreter starts it with."""
    namespace = sys.modules["__main__"].__dict__
    namespace.clear()
    namespace.update(
        __name__="__main__",
        __doc__=None,
        __package__=None,
        __spec__=None,
        __annotations__={},
        __builtins__=builtins,
    )
    return namespace


def _run_script(path: str) -> None:
    namespace = _fresh_main()
    filename = os.path.abspath(path)
    namespace["__file__"] = filename
    namespace["__cached__"] = None
    namespace["__loader__"] = SourceFileLoader("__main__", filename)
    with open(filename, "rb") as f:
        source = f.read()
    code = compile(source, filename, "exec", dont_inherit=True)
    exec(code, namespace)


def _run_module(name: str) -> None:
    import runpy

    _fresh_main()
    runpy._run_module_as_main(name)  # type: ignore[attr-defined]


def _exit_code(exc: SystemExit) -> int:
    """The status Python exits with for `exc` (printing a non-integer code, as Python does)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    sys.stderr.write(f"{code}\n")
    return 1


def run_main(request: Request) -> int:
    """Run the command's `__main__`; its exit status (-2 for an uncaught KeyboardInterrupt)."""
    try:
        if request.mode == "module":
            _run_module(request.target)
        else:
            _run_script(request.target)
        status = 0
    except SystemExit as exc:
        return _exit_code(exc)  # Python exits at once: __main__ keeps its __file__
    except KeyboardInterrupt as exc:
        exc = exc.with_traceback(_theirs(exc.__traceback__))
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        status = -int(signal.SIGINT)
    except BaseException as exc:
        # The exception's own traceback is what is printed (3.11): it starts at the script.
        exc = exc.with_traceback(_theirs(exc.__traceback__))
        sys.excepthook(type(exc), exc, exc.__traceback__)
        status = 1
    if request.mode == "script":  # as CPython's _PyRun_SimpleFileObject does once it is done
        namespace = sys.modules["__main__"].__dict__
        namespace.pop("__file__", None)
        namespace.pop("__cached__", None)
    return status


def _theirs(tb: TracebackType | None) -> TracebackType | None:
    """The traceback without this file's frames at its top: what an exec'd run would show."""
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb


def _flush() -> bool:
    ok = True
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            ok = False
    return ok


def finish(status: int) -> None:
    """Shut down as the interpreter does, then leave with `status` (never returns)."""
    threading = sys.modules.get("threading")
    shutdown = getattr(threading, "_shutdown", None)
    try:
        if shutdown is not None:
            shutdown()  # join non-daemon threads
    except BaseException:
        traceback.print_exc()
    try:
        import atexit

        atexit._run_exitfuncs()
    finally:
        flushed = _flush()
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    os._exit(status if flushed or status else 120)
