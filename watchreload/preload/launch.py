"""How a command starts Python: its interpreter, its flags, and what it runs (a script or `-m`).

`parse_command(argv)` reads a command line as CPython does (`python [flags] script.py args`,
`python [flags] -m pkg args`), and a console script or `manage.py` through its `#!` line. The
template is started with the same interpreter and flags, and a forked child is given the
`sys.argv`, `sys.orig_argv`, `sys.path[0]` and `__main__` the exec'd command would get.
Anything else (`-c`, `-i`, stdin, a directory or zip as the script) returns the reason the
template cannot run it, so that the caller execs it.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# Flags without an argument, and flags whose argument may be attached (-Wall) or follow (-W all).
_BARE_FLAGS = frozenset("bBdEhIOPqRsSuvV")
_ARG_FLAGS = frozenset("WX")
_UNSUPPORTED = {"c": "-c code", "i": "-i (interactive)"}
_LONG_ARG_FLAGS = ("--check-hash-based-pycs",)

Mode = Literal["script", "module"]


@dataclass(frozen=True)
class Launch:
    """One Python command: `interpreter flags... (target | -m target) args...`."""

    interpreter: str
    flags: tuple[str, ...]
    mode: Mode
    target: str  # the script's path as given, or the module name
    args: tuple[str, ...]
    orig_argv: tuple[str, ...]  # `sys.orig_argv` of the exec'd command

    def argv(self) -> list[str]:
        """`sys.argv` before `__main__` runs (runpy replaces `-m` with the module's file)."""
        return ["-m" if self.mode == "module" else self.target, *self.args]

    def path0(self, cwd: str) -> str | None:
        """`sys.path[0]` of the exec'd command; None with -I or -P (nothing is prepended)."""
        if "-I" in self.flags or "-P" in self.flags:
            return None
        if self.mode == "module":
            return cwd
        script = os.path.join(cwd, self.target)
        return os.path.dirname(os.path.realpath(script))


def _shebang(path: str) -> list[str] | None:
    """The `#!` line of `path` as argv, or None when it has none (or cannot be read)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = shlex.split(first[2:].decode(errors="replace"))
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]  # env -S python3 -> python3
        if words:
            found = shutil.which(words[0])
            words[0] = found or words[0]
    return words or None


def _is_python(program: str) -> bool:
    name = os.path.basename(program)
    return name.startswith("python") or name.startswith("pypy")


def parse_command(argv: Sequence[str], cwd: str, search_path: str | None = None) -> Launch | str:
    """The Launch of `argv` run in `cwd` (found on `search_path`: its PATH), or why not."""
    if not argv:
        return "the command is empty"
    program = argv[0]
    located = program if os.sep in program else shutil.which(program, path=search_path)
    if located is None:
        return f"{program!r} is not on PATH"
    if _is_python(located):
        return _parse_python(located, list(argv[1:]), program)
    shebang = _shebang(os.path.join(cwd, located))
    if shebang is None or not _is_python(shebang[0]):
        return f"{program!r} is not a Python program"
    # The kernel runs `interpreter [one argument] path args`; execvp passes the path it found.
    return _parse_python(shebang[0], [*shebang[1:2], located, *argv[1:]], shebang[0])


def _parse_python(interpreter: str, words: list[str], typed: str) -> Launch | str:
    orig, rest = (typed, *words), list(words)
    flags: list[str] = []
    while rest and rest[0].startswith("-") and rest[0] != "-":
        word = rest.pop(0)
        if word == "--":
            break
        if word.startswith("--"):
            if word not in _LONG_ARG_FLAGS and not word.startswith(_LONG_ARG_FLAGS[0] + "="):
                return f"the interpreter option {word!r} is not supported by the template"
            flags.append(word if "=" in word or not rest else f"{word}={rest.pop(0)}")
            continue
        letter = word[1]
        if letter == "m":
            target = word[2:] or (rest.pop(0) if rest else "")
            if not target:
                return "-m needs a module name"
            return Launch(interpreter, tuple(flags), "module", target, tuple(rest), orig)
        if letter in _UNSUPPORTED:
            return f"the template does not run {_UNSUPPORTED[letter]}"
        if letter in _ARG_FLAGS:
            value = word[2:] or (rest.pop(0) if rest else "")
            flags.append(f"-{letter}{value}")
        elif all(c in _BARE_FLAGS for c in word[1:]):
            flags.extend(f"-{c}" for c in word[1:])
        else:
            return f"the interpreter option {word!r} is not supported by the template"
    if not rest or rest[0] == "-":
        return "the template does not run a program read from stdin"
    return Launch(interpreter, tuple(flags), "script", rest[0], tuple(rest[1:]), orig)


def script_problem(launch: Launch, cwd: str) -> str | None:
    """Why the script cannot be run from the template (a directory, a zip), or None."""
    if launch.mode != "script":
        return None
    path = os.path.join(cwd, launch.target)
    if not os.path.isfile(path):
        return f"the script {launch.target!r} is not a file"
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            return f"the script {launch.target!r} is a zip archive"
    return None
