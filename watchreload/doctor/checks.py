"""run_checks(): every doctor check, in the order a reader needs them; doctor_main() for the CLI."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from watchreload.doctor import adapters, project, system, tree, watchman
from watchreload.doctor.report import Check, Report, Status, exit_code, format_text, to_json
from watchreload.errors import WatchreloadError
from watchreload.mounts import events_unreliable
from watchreload.reloaders import DEFAULT_WATCHMAN_TIMEOUT_S, get_reloader
from watchreload.spec import DEFAULT_IGNORE_PATTERNS, DEFAULT_INCLUDE_GLOBS, WatchSpec

logger = logging.getLogger(__name__)

# Pinned as WATCHMAN_SOCK while get_reloader() runs when no socket is known, so that pywatchman
# cannot fall back to `watchman get-sockname`, which would start a daemon.
NO_SOCKET = "/nonexistent/watchreload-doctor-has-no-socket"


@dataclass
class WatchmanView:
    """What the Watchman checks learnt, for the checks after them."""

    binary: str | None = None
    sock: str | None = None
    sock_from_environ: bool = False
    cli: watchman.WatchmanCLI | None = None  # set when the daemon answers and is not poisoned
    watched: tuple[str, ...] = ()


def _watchman_checks(report: Report, environ: Mapping[str, str], timeout_s: float) -> WatchmanView:
    view = WatchmanView(binary=watchman.find_binary(environ))
    version = watchman.client_version(view.binary, environ) if view.binary else ""
    report.append(watchman.check_binary(view.binary, version))
    view.sock, source = watchman.find_socket(view.binary, environ)
    view.sock_from_environ = source == watchman.FROM_ENVIRON
    report.append(watchman.check_socket(view.sock, source))
    if view.sock is None:
        return view
    if view.binary is None:
        summary = f"not asked: doctor talks to the daemon at {view.sock} through the binary"
        report.append(Check("watchman daemon", "info", summary, watchman.INSTALL_FIX))
        return view
    cli = watchman.WatchmanCLI(view.binary, view.sock, timeout_s, dict(environ))
    state = watchman.probe_daemon(cli)
    report.append(watchman.check_daemon(state, view.sock, view.sock_from_environ))
    if state.answers:
        listed, roots = watchman.watch_list(cli)
        report.append(listed)
        view.cli, view.watched = cli, tuple(roots)
    return view


@contextlib.contextmanager
def _socket_pinned(sock: str | None) -> Iterator[None]:
    """WATCHMAN_SOCK set to `sock` for the duration (get_reloader reads os.environ)."""
    previous = os.environ.get("WATCHMAN_SOCK")
    if sock is None and shutil.which("watchman") is None:
        os.environ.pop("WATCHMAN_SOCK", None)  # nothing could be started: let it say so
    else:
        os.environ["WATCHMAN_SOCK"] = sock or NO_SOCKET
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("WATCHMAN_SOCK", None)
        else:
            os.environ["WATCHMAN_SOCK"] = previous


def _backend_check(roots: Sequence[Path], view: WatchmanView, timeout_s: float) -> Check:
    """What get_reloader("auto") picks, asked without starting a daemon or the reloader."""
    with _socket_pinned(view.sock):
        reloader = get_reloader(
            "auto", roots=roots, watch_modules=False, watchman_timeout_s=timeout_s
        )
    data = {"backend": reloader.name, "reason": reloader.reason}
    spawns = view.binary is not None and view.sock is not None and not view.sock_from_environ
    if reloader.name == "stat" and spawns and reloader.reason.startswith("Watchman unavailable"):
        summary = (
            "auto would start the per-user Watchman daemon and use it (doctor starts nothing; "
            f"without a daemon: {reloader.reason})"
        )
        return Check("backend", "info", summary, None, {**data, "backend": "watchman"})
    status: Status = "ok" if reloader.name == "watchman" else "info"
    return Check("backend", status, f"auto uses {reloader.name}: {reloader.reason}", None, data)


def _watch_check(
    root: Path, watch: str | None, project: Path | None, count: tree.TreeCount, asked: bool
) -> Check:
    data = {
        "root": str(root),
        "watch": watch,
        "would_watch": None if project is None else str(project),
        "warning": count.warning or None,
    }
    if watch is None:
        summary = f"{root}: not watched yet; watch-project would watch {project}"
        summary += "" if asked else " (no daemon to ask)"
        return Check("watch", "info", summary, None, data)
    if count.query_error:
        summary = (
            f"{root}: the daemon watches it as {watch} but a query failed: {count.query_error}"
        )
        fix = f"watchman watch-del {watch}; watchman watch-project {watch}"
        return Check("watch", "warn", summary, fix, data)
    if count.warning:
        first = count.warning.replace("\n", " ").split("To resolve")[0].strip()
        fix = (
            "an overflowed inotify queue is the usual cause: sudo sysctl "
            "fs.inotify.max_queued_events=65536 (and see the inotify line); the warning stays "
            f"until: watchman watch-del {watch}; watchman watch-project {watch}"
        )
        return Check("watch", "warn", f"{root}: {first}", fix, data)
    return Check("watch", "ok", f"{root}: watched by the daemon as {watch}, no recrawl", None, data)


def _distinct(roots: Sequence[Path]) -> list[Path]:
    """The roots without those inside another one (so that nothing is counted twice)."""
    ordered = sorted({Path(os.path.realpath(r)): r for r in roots}.items())
    kept: list[tuple[Path, Path]] = []
    for real, root in ordered:
        if not any(real.is_relative_to(k) for k, _ in kept):
            kept.append((real, root))
    return [root for _, root in kept]


def _tree_checks(
    report: Report, roots: Sequence[Path], spec: WatchSpec, view: WatchmanView, proc_root: Path
) -> None:
    to_add = already = 0
    projects: set[Path] = set()  # watches a first watch-project would add, each counted once
    for root in _distinct(roots):
        real = os.path.realpath(root)
        watch = watchman.watch_of(real, list(view.watched)) if view.cli else None
        globs = sorted(spec.roots[root])
        # Where events may not arrive, the daemon's view of the tree may be stale: walk it.
        trusted = view.cli if events_unreliable(root) is None else None
        count = tree.count_tree(root, globs, spec, trusted, watch)
        project = tree.watch_project_root(Path(real)) if watch is None else None
        report.append(_watch_check(root, watch, project, count, view.cli is not None))
        report.append(tree.check_files(count, globs))
        if project is None:
            already += count.inotify_directories
        elif project not in projects:
            projects.add(project)
            whole = (
                count if str(project) == real else tree.count_by_walk(project, globs, spec.ignore)
            )
            to_add += whole.inotify_directories
    report.append(system.check_inotify(system.read_inotify(proc_root), to_add, already))


def _paths_check(roots: Sequence[Path]) -> list[Check]:
    bad = []
    for root in roots:
        if not root.is_dir():
            problem = "does not exist" if not root.exists() else "is not a directory"
            summary = f"watch path {root} {problem}"
            fix = "pass an existing directory"
            bad.append(Check("watch path", "fail", summary, fix, {"root": str(root)}))
    return bad


def run_checks(
    roots: Sequence[Path],
    *,
    include_globs: Sequence[str] = DEFAULT_INCLUDE_GLOBS,
    ignore: Sequence[str] = DEFAULT_IGNORE_PATTERNS,
    watchman_timeout_s: float = DEFAULT_WATCHMAN_TIMEOUT_S,
    environ: Mapping[str, str] = os.environ,
    proc_root: Path = system.PROC,
    cwd: Path | None = None,
) -> Report:
    """Every check, read-only: no daemon is started, no watch added, no file written (`proc_root`
    and `environ` are seams for tests: a fake /proc tree, a daemon-less environment).

    While get_reloader() runs, os.environ["WATCHMAN_SOCK"] is pinned to the socket doctor found
    (pywatchman would otherwise run `watchman get-sockname`, which starts a daemon) and restored
    after; do not run doctor alongside threads that read the environment.
    """
    cwd = Path.cwd() if cwd is None else cwd
    roots = [Path(cwd, root).absolute() for root in roots] or [cwd.absolute()]
    report = _paths_check(roots)
    roots = [root for root in roots if root.is_dir()]
    spec = WatchSpec.build(roots, include_globs, ignore)
    view = _watchman_checks(report, environ, watchman_timeout_s)
    report.insert(0, _backend_check(roots, view, watchman_timeout_s))
    _tree_checks(report, roots, spec, view, proc_root)
    report.extend(system.check_mounts(root) for root in roots)
    configs = {project.find_watchmanconfig(root.resolve()): root for root in roots}
    report.extend(project.check_watchmanconfig(root) for root in configs.values())
    report.append(project.check_pyproject(cwd))
    report.append(project.check_settings(environ, cwd))
    report.extend(project.check_git_hooks(root) for root in roots)
    return report


def doctor_main(
    roots: Sequence[Path],
    json_output: bool = False,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    proc_root: Path = system.PROC,
    out: TextIO | None = None,
) -> int:
    """`watchreload doctor [--watch PATH]... [--json]`: print the report, return the exit code.

    Globs, ignores, the Watchman timeout and (without `roots`) the watch paths come from the
    settings; when they are invalid the defaults are used and the settings line says why.
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    try:
        settings, _ = adapters.effective_settings(environ, cwd)
    except WatchreloadError:
        settings = {}  # the settings line reports it; the defaults stand in meanwhile
    if not settings:
        report = run_checks(roots, environ=environ, cwd=cwd, proc_root=proc_root)
    else:
        defaults = list(DEFAULT_IGNORE_PATTERNS) if settings["default_ignores"][0] else []
        report = run_checks(
            roots or [Path(p) for p in settings["watch"][0]],
            include_globs=settings["glob"][0],
            ignore=defaults + list(settings["ignore"][0]),
            watchman_timeout_s=settings["watchman_timeout"][0],
            environ=environ,
            cwd=cwd,
            proc_root=proc_root,
        )
    print(to_json(report) if json_output else format_text(report), end="", file=out or sys.stdout)
    return exit_code(report)
