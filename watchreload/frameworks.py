"""No reloader inside the reloader: turn a framework's own reloader off in the command.

A development server that reloads itself (Django's `runserver`, `flask run` in debug mode or with
`--reload`, `uvicorn --reload`) runs a watcher of its own and a server in a child process: under
watchreload that is two watchers and, at each edit, a restart inside the restart.
`inner_reloader_off` returns the command with that reloader off, and what it did:

| command                                   | what watchreload does                  |
|-------------------------------------------|----------------------------------------|
| `[python] manage.py runserver ...`,       | adds `--noreload` (unless it is there) |
| `django-admin runserver`, `-m django`     |                                        |
| `flask [--debug] run ...`, `-m flask`     | replaces `--reload` by `--no-reload`;  |
| (with `--debug`, FLASK_DEBUG or           | adds `--no-reload` after `run` when    |
| FLASK_RUN_RELOAD on)                      | debug mode turns the reloader on       |
| `uvicorn ... --reload`, `-m uvicorn`      | drops `--reload` and its `--reload-*`  |
|                                           | options                                |

Anything else is left as it is, and so is a `--shell` command (the line is not parsed). Pure: the
words and the environment in, the words out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_PYTHON = re.compile(r"(?:python|pypy)(?:\d+(?:\.\d+)*)?[td]?")
_PYTHON_OPTIONS_WITH_ARGUMENT = {"-W", "-X", "-Q"}
_TRUE = {"1", "true", "yes", "on"}
_FLASK_GROUP_OPTIONS_WITH_ARGUMENT = {"--app", "-A", "--env-file", "-e"}
_UVICORN_RELOAD_OPTIONS = {"--reload-dir", "--reload-include", "--reload-exclude", "--reload-delay"}


@dataclass(frozen=True)
class InnerReloaderOff:
    """The command with its framework's reloader off, and what changed, for the start line."""

    command: tuple[str, ...]
    framework: str  # "Django runserver", "flask run", "uvicorn"
    change: str  # "added --noreload"

    def describe(self) -> str:
        return f"{self.framework}'s own reloader turned off ({self.change})"


def program_and_args(argv: Sequence[str]) -> tuple[str, int] | None:
    """The program a command runs (a script's or a `-m` module's name) and where its arguments
    start in `argv`; None for a bare interpreter (`python`, `python -c ...`)."""
    if not argv:
        return None
    first = os.path.basename(argv[0])
    if _PYTHON.fullmatch(first) is None:
        return first, 1
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "-m":
            return (argv[i + 1], i + 2) if i + 1 < len(argv) else None
        if word.startswith("-m") and len(word) > 2:
            return word[2:], i + 1
        if word in ("-c", "-"):
            return None
        if word in _PYTHON_OPTIONS_WITH_ARGUMENT:
            i += 2
            continue
        if word.startswith("-"):
            i += 1
            continue
        return os.path.basename(word), i + 1
    return None


def _django(argv: list[str], start: int, env: Mapping[str, str]) -> InnerReloaderOff | None:
    words = [w for w in argv[start:] if not w.startswith("-")]
    if not words or words[0] != "runserver" or "--noreload" in argv[start:]:
        return None
    return InnerReloaderOff((*argv, "--noreload"), "Django runserver", "added --noreload")


def _flask(argv: list[str], start: int, env: Mapping[str, str]) -> InnerReloaderOff | None:
    i = start
    debug = env.get("FLASK_DEBUG", "").strip().lower() in _TRUE
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "--debug":
            debug = True
        elif argv[i] == "--no-debug":
            debug = False
        i += 2 if argv[i] in _FLASK_GROUP_OPTIONS_WITH_ARGUMENT else 1
    if i >= len(argv) or argv[i] != "run":
        return None
    run_args = argv[i + 1 :]
    if "--no-reload" in run_args:
        return None
    if "--reload" in run_args:
        replaced = [*argv[: i + 1], *("--no-reload" if w == "--reload" else w for w in run_args)]
        return InnerReloaderOff(tuple(replaced), "flask run", "--reload replaced by --no-reload")
    if "--debug" in run_args:
        debug = True
    if not debug and env.get("FLASK_RUN_RELOAD", "").strip().lower() not in _TRUE:
        return None
    added = (*argv[: i + 1], "--no-reload", *run_args)
    return InnerReloaderOff(added, "flask run", "added --no-reload")


def _uvicorn(argv: list[str], start: int, env: Mapping[str, str]) -> InnerReloaderOff | None:
    args = argv[start:]
    if "--reload" not in args:
        return None
    kept: list[str] = []
    dropped: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        name = word.split("=", 1)[0]
        if word == "--reload":
            dropped.append(word)
            i += 1
        elif name in _UVICORN_RELOAD_OPTIONS:
            dropped.append(name)
            i += 1 if "=" in word else 2
        else:
            kept.append(word)
            i += 1
    change = "dropped " + ", ".join(dict.fromkeys(dropped))
    return InnerReloaderOff((*argv[:start], *kept), "uvicorn", change)


Rule = Callable[[list[str], int, Mapping[str, str]], "InnerReloaderOff | None"]

# The program (a script's base name, a console script, or a -m module) → its rule.
RULES: dict[str, Rule] = {
    "manage.py": _django,
    "django-admin": _django,
    "django-admin.py": _django,
    "django": _django,
    "flask": _flask,
    "uvicorn": _uvicorn,
}


def inner_reloader_off(
    command: Sequence[str], env: Mapping[str, str], *, shell: bool = False
) -> InnerReloaderOff | None:
    """The command with its framework's own reloader off, or None when there is none to turn off."""
    if shell:
        return None
    argv = list(command)
    found = program_and_args(argv)
    if found is None:
        return None
    program, start = found
    rule = RULES.get(program)
    return rule(argv, start, env) if rule is not None else None
