"""Whether a command runs a Python interpreter, and so whether the agent can report from it.

A command runs Python when its program, found the way exec finds it (a path, or on PATH):

- is named like an interpreter (`python`, `python3`, `python3.12`, `python3.13t`, `pypy3`), or
  resolves (symlinks followed) to such a file or to `sys.executable`: a virtualenv's
  `bin/python`, `python -m module`;
- or is a script whose `#!` line names such an interpreter, directly (`#!/venv/bin/python`, as
  pip writes for console scripts such as uvicorn, flask, gunicorn, pytest) or through env
  (`#!/usr/bin/env python3`, an executable `manage.py`; `env -S` too), or pip's `#!/bin/sh`
  form for interpreter paths too long for a `#!` line (`'''exec' /venv/bin/python "$0" "$@"`).

`env [NAME=VALUE ...] python ...` counts as the program after env. Nothing else does: a `--shell`
command is never detected (the shell line is not parsed; the Python it starts would report, but a
non-Python command must run exactly as without the agent), nor are launchers such as `uv run` or
`poetry run`, nor programs that embed Python (uwsgi).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Sequence

_PYTHON_NAME = re.compile(r"(?:python|pypy)(?:\d+(?:\.\d+)*)?[td]?(?:-dbg)?")
_SHEBANG_READ_BYTES = 1024
_ENV_OPTIONS_WITH_ARGUMENT = {"-u", "--unset", "-C", "--chdir"}


def is_python_command(argv: Sequence[str], shell: bool = False, *, path: str | None = None) -> bool:
    """True when `argv` starts a Python interpreter; `path` is the child's PATH (default: ours)."""
    if shell or not argv:
        return False
    program, rest = argv[0], list(argv[1:])
    if os.path.basename(program) == "env":
        after = _after_env(rest)
        return bool(after) and is_python_command(after, path=path)
    resolved = _which(program, path)
    if resolved is None:
        return _is_python_name(program)
    return is_python_executable(resolved, path=path)


def is_python_executable(executable: str, *, path: str | None = None) -> bool:
    """True for an interpreter, or a script whose #! line starts one."""
    if _is_interpreter(executable):
        return True
    interpreter = shebang_interpreter(executable)
    if interpreter is None:
        return False
    if os.sep not in interpreter:
        found = _which(interpreter, path)
        return _is_python_name(interpreter) if found is None else _is_interpreter(found)
    return _is_interpreter(interpreter)


def shebang_interpreter(script: str) -> str | None:
    """The program a script's #! line runs (through env, and pip's /bin/sh form), or None."""
    try:
        with open(script, "rb") as f:
            head = f.read(_SHEBANG_READ_BYTES)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    lines = head.split(b"\n", 2)
    words = lines[0][2:].decode(errors="replace").split()
    if not words:
        return None
    program, args = words[0], words[1:]
    name = os.path.basename(program)
    if name == "env":
        after = _after_env(args)
        return after[0] if after else None
    if name in ("sh", "bash", "dash") and len(lines) > 1:
        return _sh_exec_interpreter(lines[1].decode(errors="replace"))
    return program


def _sh_exec_interpreter(line: str) -> str | None:
    """pip's `'''exec' "/very/long/venv/bin/python" "$0" "$@"` second line, or None."""
    if not line.startswith("'''exec'"):
        return None
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    return words[1] if len(words) > 1 and words[0] == "exec" else None


def _after_env(args: Sequence[str]) -> list[str]:
    """The command env runs: its arguments less options and NAME=VALUE assignments."""
    words = list(args)
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-S", "--split-string") and i + 1 < len(words):
            return [*words[i + 1].split(), *words[i + 2 :]]
        if word.startswith("-S") and len(word) > 2:
            return [*word[2:].split(), *words[i + 1 :]]
        if word in _ENV_OPTIONS_WITH_ARGUMENT:
            i += 2
            continue
        if word == "--":
            return words[i + 1 :]
        if word.startswith("-") or ("=" in word and not word.startswith("=")):
            i += 1
            continue
        return words[i:]
    return []


def _which(program: str, path: str | None) -> str | None:
    if os.sep in program:
        return program if os.path.isfile(program) else None
    return shutil.which(program, path=path)


def _is_python_name(program: str) -> bool:
    return _PYTHON_NAME.fullmatch(os.path.basename(program)) is not None


def _is_interpreter(executable: str) -> bool:
    if _is_python_name(executable):
        return True
    real = os.path.realpath(executable)
    if _is_python_name(real):
        return True
    return bool(sys.executable) and real == os.path.realpath(sys.executable)
