"""Why a restart cannot be forked from the template, besides staleness: each a short reason.

The supervisor prints it: "restarted by exec: <reason>".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from watchreload.preload import launch

# A debugger, profiler or coverage run: it hooks the interpreter at start, which a fork skips.
DEBUG_ENV = ("COVERAGE_PROCESS_START", "PYDEVD_LOAD_VALUES_ASYNC", "DEBUGPY_LAUNCHER_PORT")
DEBUG_MODULES = frozenset(
    {"pdb", "debugpy", "pydevd", "pudb", "coverage", "cProfile", "profile", "trace", "pyinstrument"}
)


def platform_reason() -> str | None:
    """Why this system execs: no fork (Windows), or macOS, where fork after imports may crash."""
    if not hasattr(os, "fork"):
        return "this system has no fork()"
    if sys.platform == "darwin":
        return "on macOS a child forked after imports may crash (Objective-C runtime)"
    return None


def mismatch(key: Mapping[str, Any], parsed: launch.Launch, cwd: str) -> str | None:
    if (parsed.interpreter, list(parsed.flags)) != (key["interpreter"], key["flags"]):
        return "the interpreter or its flags differ from the template's"
    if cwd != key["cwd"] or parsed.path0(cwd) != key["path0"]:
        return "the working directory or sys.path[0] differ from the template's"
    return None


def debugger_reason(parsed: launch.Launch, env: Mapping[str, str]) -> str | None:
    """Why the command looks like a debugger, profiler or coverage run, or None."""
    names = [n for n in DEBUG_ENV if n in env] + [n for n in env if n.startswith("PYDEVD_")]
    if names:
        return f"a debugger or coverage run ({names[0]} is set)"
    target = parsed.target if parsed.mode == "module" else os.path.basename(parsed.target)
    if target.split(".")[0] in DEBUG_MODULES:
        return f"a debugger, profiler or coverage run ({target})"
    return None


def describe_unsafe(report: Mapping[str, Any]) -> str:
    culprits = report.get("culprits") or {}
    if culprits:
        return "; ".join(f"{name} ({what})" for name, what in culprits.items())
    return str(report.get("reason"))
