"""watchreload's agent in a supervised Python process: the only file of its PYTHONPATH directory.

watchreload prepends this directory to PYTHONPATH, so that `site` imports this file as
`sitecustomize` in every Python process of the child's tree. It:

1. loads `../_report.py` by its path (so that it works whether or not watchreload is installed
   in the child's interpreter) and starts it, when WATCHRELOAD_AGENT_SOCKET names a socket: that
   module reports what the process imports (see its docstring);
2. takes its own directory out of `sys.path` and imports the `sitecustomize` the user would have
   had without it (the next one on `sys.path`), so that one still runs; `os.environ['PYTHONPATH']`
   keeps the directory, so that Python grandchildren report too.

It imports nothing but built-in modules and must run on every Python 3 a child may use (3.7 and
newer). What the program can see: PYTHONPATH, WATCHRELOAD_AGENT_SOCKET and WATCHRELOAD_AGENT_RUN
in `os.environ`, this module as `sys.modules['_watchreload_agent']`, the hooks `_report.py`
lists, and a handler for signal SIGRTMAX - 3 (unless the program had one), on which the agent
reports at once: watchreload asks a program that imported and went idle, which reports nothing
else before it exits.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SOCKET_ENV = "WATCHRELOAD_AGENT_SOCKET"
MODULE_NAME = "_watchreload_agent"  # where this module stays in sys.modules once chained
REPORT_NAME = "_watchreload_agent_report"  # the name _report.py runs under (not in sys.modules)
REPORT_SIGNAL_BELOW_MAX = 3  # SIGRTMAX - 3 asks for a report (watchreload/agent/request.py)

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT_FILE = os.path.join(os.path.dirname(HERE), "_report.py")


def _load_report() -> Any:
    """`_report.py` as a module of its own, loaded from its file (and its bytecode cache)."""
    util: Any = sys.modules.get("importlib.util")
    if util is None:  # the same functions, without importing importlib.util for them
        import _frozen_importlib as bootstrap
        import _frozen_importlib_external as util

        module_from_spec = bootstrap.module_from_spec
    else:
        module_from_spec = util.module_from_spec
    spec = util.spec_from_file_location(REPORT_NAME, REPORT_FILE)
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _chain() -> None:
    """Leave sys.path as it would be without this directory and run the user's sitecustomize."""
    me = sys.modules.get("sitecustomize")
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
    sys.path_importer_cache.pop(HERE, None)
    if me is None or getattr(me, "__file__", None) is None:
        return
    sys.modules[MODULE_NAME] = me
    del sys.modules["sitecustomize"]
    try:
        __import__("sitecustomize")
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise
        sys.modules["sitecustomize"] = me  # there is none: site sees this one, as before


agent: Any = None  # this process's agent (a _report._Agent), for a debugger (and the tests)


def _start() -> None:
    global agent
    if MODULE_NAME in sys.modules:
        return  # already running in this process (the directory twice on PYTHONPATH)
    if os.environ.get(SOCKET_ENV):
        agent = _load_report().start(HERE)
        if agent is not None:
            _answer_requests(agent)


def _answer_requests(report: Any) -> None:
    """Report at once on SIGRTMAX - 3, unless the program set that signal up itself."""
    import _signal  # type: ignore[import-not-found]  # the C module: `signal` imports enum

    highest = getattr(_signal, "SIGRTMAX", 64 if sys.platform.startswith("linux") else None)
    if highest is None:
        return
    signum = highest - REPORT_SIGNAL_BELOW_MAX
    try:
        if _signal.getsignal(signum) == _signal.SIG_DFL:
            _signal.signal(signum, lambda _signum, _frame: report.flush())
    except (OSError, ValueError):  # not the main thread, or no such signal here
        pass


if __name__ == "sitecustomize":  # not when imported by its package name (a docs tool, a test)
    _start()
    _chain()
