"""The project's side: .watchmanconfig, [tool.watchreload], the effective settings, git hooks."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from watchreload import vcs
from watchreload.doctor import adapters
from watchreload.doctor.report import Check
from watchreload.errors import WatchreloadError
from watchreload.setting_sources import find_pyproject, read_pyproject

logger = logging.getLogger(__name__)

WATCHMANCONFIG = ".watchmanconfig"


def find_watchmanconfig(root: Path) -> Path | None:
    """The nearest .watchmanconfig in `root` or above it (Watchman reads the one at the root of
    the watch, which watch-project puts at such a directory)."""
    for directory in (root, *root.parents):
        candidate = directory / WATCHMANCONFIG
        if candidate.is_file():
            return candidate
    return None


def check_watchmanconfig(root: Path) -> Check:
    path = find_watchmanconfig(root.resolve())
    if path is None:
        summary = f"no {WATCHMANCONFIG} in {root} or above it (Watchman's defaults apply)"
        return Check("watchmanconfig", "info", summary, None, {"root": str(root), "path": None})
    try:
        content = json.loads(path.read_text() or "{}")
    except (OSError, ValueError) as exc:
        fix = f"make {path} a JSON object (or remove it)"
        data: dict[str, Any] = {"root": str(root), "path": str(path)}
        return Check("watchmanconfig", "warn", f"{path} cannot be read: {exc}", fix, data)
    keys = sorted(content) if isinstance(content, dict) else []
    data = {"root": str(root), "path": str(path), "keys": keys}
    shown = ", ".join(keys) if keys else "no keys"
    return Check("watchmanconfig", "ok", f"{path} ({shown})", None, data)


def check_pyproject(cwd: Path) -> Check:
    path = find_pyproject(cwd)
    if path is None:
        summary = f"no pyproject.toml in {cwd} or above it"
        return Check("pyproject", "info", summary, None, {"path": None, "table": False})
    try:
        table = read_pyproject(path)
    except WatchreloadError as exc:
        data = {"path": str(path), "table": False}
        return Check("pyproject", "fail", str(exc), "fix the file", data)
    has_table = _has_table(path)
    data = {"path": str(path), "table": has_table, "keys": sorted(table)}
    if not has_table:
        return Check("pyproject", "info", f"{path} has no [tool.watchreload] table", None, data)
    return Check("pyproject", "ok", f"[tool.watchreload] in {path}", None, data)


def _has_table(path: Path) -> bool:
    import tomllib

    try:
        tool = tomllib.loads(path.read_text()).get("tool", {})
    except (OSError, ValueError):
        return False
    return isinstance(tool, dict) and "watchreload" in tool


def _split_fix(message: str) -> tuple[str, str | None]:
    """Our messages read "value, problem; fix": the part after the last "; " is the fix."""
    problem, sep, fix = message.rpartition("; ")
    return (problem, fix) if sep else (message, None)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def check_settings(environ: Mapping[str, str], cwd: Path) -> Check:
    try:
        settings, pyproject = adapters.effective_settings(environ, cwd)
    except WatchreloadError as exc:
        problem, fix = _split_fix(str(exc))
        data: dict[str, Any] = {"error": str(exc), "error_type": type(exc).__name__}
        return Check("settings", "fail", problem, fix or "fix the setting named", data)
    changed = [f"{n}={_shown(v)} ({src})" for n, (v, src) in settings.items() if src != "default"]
    summary = "all defaults" if not changed else "; ".join(changed)
    data = {
        "settings": {name: {"value": v, "source": src} for name, (v, src) in settings.items()},
        "pyproject": None if pyproject is None else str(pyproject),
    }
    return Check("settings", "ok", summary, None, data)


def check_git_hooks(root: Path) -> Check:
    data: dict[str, Any] = {"root": str(root)}
    try:
        directory = vcs.hooks_directory(root)
    except WatchreloadError:
        return Check("git hooks", "info", f"{root} is not in a git working tree", None, data)
    hooks = (*vcs.ENTER_HOOKS, *vcs.LEAVE_HOOKS)
    ours = [hook for hook in hooks if _is_ours(directory / hook)]
    data.update({"hooks_directory": str(directory), "installed": ours, "expected": list(hooks)})
    fix = f"watchreload-git-hooks install {root}"
    if len(ours) == len(hooks):
        return Check("git hooks", "ok", f"installed in {directory}", None, data)
    if not ours:
        summary = f"not installed in {directory} (optional: one restart per rebase)"
        return Check("git hooks", "info", summary, fix, data)
    missing = ", ".join(hook for hook in hooks if hook not in ours)
    return Check("git hooks", "warn", f"{directory}: {missing} missing", fix, data)


def _is_ours(path: Path) -> bool:
    try:
        return vcs.MARKER in path.read_text(errors="replace")
    except OSError:
        return False
