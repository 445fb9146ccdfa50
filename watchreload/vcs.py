"""Git hooks that make git declare the Watchman state `watchreload.vcs` around a rebase.

Why hooks at all: Watchman already defers subscriptions while `.git/index.lock` exists
(`defer_vcs`), which covers one checkout, merge or reset: git holds that lock while it writes the
working tree. A rebase (or `git pull --rebase`) is a run of such steps with gaps between them, so
without help a long rebase can restart a program several times. The hooks bracket it:

- `pre-rebase` enters the state: it starts a small detached holder process that asserts
  `state-enter` and keeps its Watchman session open (a state lives only as long as the session
  that entered it, so a one-shot `watchman -j` command cannot hold one);
- `post-rewrite` (after a rebase), `post-checkout` (when no rebase is in progress) and `post-merge`
  leave it: they signal the holder, which sends `state-leave` and exits.

While the state is asserted WatchmanReloader holds reloads back; when it ends, everything that
changed arrives as one batch and gives one restart. The holder also leaves the state as soon as the
git process that ran `pre-rebase` exits (a rebase that stops on a conflict, a fast-forward rebase
that runs no `post-rewrite`, a crash), and in any case after `max_hold_s` (10 minutes), so a state
can never outlive the git command: while you resolve a conflict, reloads work as usual.

Trade-off: git 2.39 has no hook that runs *before* checkout or merge write the working tree, and the
`reference-transaction` hook runs after they have written it (and also for commit, fetch and branch
creation, which have no matching "after" hook), so it cannot bracket them; `defer_vcs` does.

Existing hooks are kept: each is renamed to `<hook>.watchreload-chained` and run by ours, with the
same arguments and standard input, and its exit status is git's answer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from watchreload.errors import GitHookError, WatchreloadError
from watchreload.procfs import command_line, parent_of, pid_exists

logger = logging.getLogger(__name__)

# The state the hooks declare. Mercurial declares `hg.update` itself. While either is asserted the
# Watchman daemon defers our notifications and reloads are held back; when it is left, everything
# arrives as one batch.
STATE_NAME = "watchreload.vcs"
DEFERRED_STATES: tuple[str, ...] = ("hg.update", STATE_NAME)
HOLDER_MODULE = "watchreload.vcs"
MARKER = "# watchreload-git-hook"
CHAINED_SUFFIX = ".watchreload-chained"
ENTER_HOOKS: tuple[str, ...] = ("pre-rebase",)
LEAVE_HOOKS: tuple[str, ...] = ("post-checkout", "post-merge", "post-rewrite")
PIDFILE_NAME = "watchreload-vcs-state.pid"
DEFAULT_MAX_HOLD_S = 600.0
HANDSHAKE_TIMEOUT_S = 10.0


def _git(repo: Path, *args: str) -> str:
    if not Path(repo).is_dir():
        raise GitHookError(f"{repo} is not a directory; pass the root of a git working tree")
    try:
        result = subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
        )
    except FileNotFoundError as exc:
        raise GitHookError("git is not on PATH; install git to use the git hooks") from exc
    except subprocess.CalledProcessError as exc:
        raise GitHookError(
            f"{repo} is not a git working tree ({exc.stderr.strip()}); pass the repository root"
        ) from exc
    return result.stdout.strip()


def hooks_directory(repo: Path) -> Path:
    """Where git looks for hooks (honours core.hooksPath)."""
    return Path(repo, _git(repo, "rev-parse", "--git-path", "hooks")).absolute()


def _script(hook: str, python: str) -> str:
    command = f"{shlex.quote(python)} -m watchreload.vcs"
    chained = f'"$(dirname "$0")/{hook}{CHAINED_SUFFIX}"'
    lines = [
        "#!/bin/sh",
        f"{MARKER} (installed by watchreload; see docs/watchman.md)",
        f"# Your previous {hook} hook, if any, is {hook}{CHAINED_SUFFIX} and still runs.",
    ]
    if hook in ENTER_HOOKS:
        lines += [
            f"if [ -x {chained} ]; then",
            f'    {chained} "$@" || exit $?',
            "fi",
            f"{command} enter </dev/null >/dev/null 2>&1 || true",
            "exit 0",
        ]
    else:
        lines += [
            f'{command} leave --hook {hook} "$@" </dev/null >/dev/null 2>&1 || true',
            f"if [ -x {chained} ]; then",
            f'    exec {chained} "$@"',
            "fi",
            "exit 0",
        ]
    return "\n".join(lines) + "\n"


def _is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def install_git_hooks(repo: Path, *, python: str | None = None) -> list[Path]:
    """Install the hooks into `repo`'s hooks directory; return the hook files written.

    Installing again rewrites our hooks and keeps the chained ones. `python` is the interpreter the
    hooks run (default: this one, which has watchreload and pywatchman).
    """
    repo = Path(repo)
    directory = hooks_directory(repo)
    directory.mkdir(parents=True, exist_ok=True)
    interpreter = python or sys.executable
    written: list[Path] = []
    for hook in (*ENTER_HOOKS, *LEAVE_HOOKS):
        path = directory / hook
        chained = directory / (hook + CHAINED_SUFFIX)
        if (path.exists() or path.is_symlink()) and not _is_ours(path):
            if chained.exists() or chained.is_symlink():
                raise GitHookError(
                    f"{path} is not watchreload's and {chained} exists too; merge them by hand, "
                    "remove one, and install again"
                )
            path.rename(chained)
        path.write_text(_script(hook, interpreter))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(path)
    return written


def uninstall_git_hooks(repo: Path) -> list[Path]:
    """Remove our hooks and put the chained ones back; return the hook files removed."""
    directory = hooks_directory(Path(repo))
    removed: list[Path] = []
    for hook in (*ENTER_HOOKS, *LEAVE_HOOKS):
        path = directory / hook
        if _is_ours(path):
            path.unlink()
            removed.append(path)
            chained = directory / (hook + CHAINED_SUFFIX)
            if chained.exists() or chained.is_symlink():
                chained.rename(path)
    return removed


# -- what the hooks run --------------------------------------------------------------------------


def _git_dir(cwd: Path) -> Path:
    return Path(_git(cwd, "rev-parse", "--absolute-git-dir"))


def _rebase_in_progress(git_dir: Path) -> bool:
    return (git_dir / "rebase-merge").is_dir() or (git_dir / "rebase-apply").is_dir()


def _is_holder(pid: int) -> bool:
    """True when `pid` is a live holder process (not a stranger that reused a stale pid)."""
    args = command_line(pid)
    return HOLDER_MODULE in args and "hold" in args


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _sockpath() -> str | None:
    """The daemon's socket, without starting a daemon (the hooks must never spawn one)."""
    sock = os.environ.get("WATCHMAN_SOCK")
    if sock:
        return sock
    try:
        result = subprocess.run(
            ["watchman", "--no-spawn", "--output-encoding=json", "get-sockname"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    try:
        answer = json.loads(result.stdout)
    except ValueError:
        return None
    value = answer.get("unix_domain") or answer.get("sockname")
    return str(value) if value else None


def enter(cwd: Path, max_hold_s: float = DEFAULT_MAX_HOLD_S) -> int:
    """Start a holder that asserts the state, and wait until it has (or has given up)."""
    # This process runs under the hook's shell, which git runs: the holder outlives neither git.
    git_pid = parent_of(os.getppid()) or os.getppid()
    git_dir = _git_dir(cwd)
    pidfile = git_dir / PIDFILE_NAME
    pid = _read_pid(pidfile)
    if pid is not None and _is_holder(pid):
        return 0  # already held (a rebase that checks out several times)
    pidfile.unlink(missing_ok=True)
    root = _git(cwd, "rev-parse", "--show-toplevel")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            HOLDER_MODULE,
            "hold",
            root,
            str(pidfile),
            str(max_hold_s),
            str(git_pid),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
    while time.monotonic() < deadline:
        if _read_pid(pidfile) == holder.pid:
            return 0
        if holder.poll() is not None:
            return 0  # Watchman is not running or not watching this repository: nothing to hold
        time.sleep(0.01)
    return 0


def leave(cwd: Path, hook: str = "") -> int:
    """Tell the holder to leave the state, and wait until it has."""
    git_dir = _git_dir(cwd)
    if hook == "post-checkout" and _rebase_in_progress(git_dir):
        return 0  # a rebase checks out before its picks; post-rewrite ends the state
    pidfile = git_dir / PIDFILE_NAME
    pid = _read_pid(pidfile)
    if pid is None:
        return 0
    if not _is_holder(pid):
        pidfile.unlink(missing_ok=True)
        return 0
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
    while time.monotonic() < deadline and pidfile.exists() and _is_holder(pid):
        time.sleep(0.01)
    return 0


def hold(root: str, pidfile: Path, max_hold_s: float, git_pid: int) -> int:
    """Assert the state on the watch containing `root` until SIGTERM, git exits or `max_hold_s`."""
    import pywatchman

    sockpath = _sockpath()
    if sockpath is None:
        return 1
    client = pywatchman.client(sockpath=sockpath, timeout=10)
    try:
        real = os.path.realpath(root)
        roots = [str(r) for r in client.query("watch-list")["roots"]]
        watched = [r for r in roots if real == r or real.startswith(r.rstrip("/") + "/")]
        if not watched:
            return 1  # nobody watches this repository: no state to declare
        watch_root = max(watched, key=len)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        signal.signal(signal.SIGINT, lambda *_: done.set())
        client.query(
            "state-enter", watch_root, {"name": STATE_NAME, "metadata": {"pid": os.getpid()}}
        )
        temporary = pidfile.with_name(pidfile.name + ".tmp")
        temporary.write_text(str(os.getpid()))
        temporary.rename(pidfile)
        try:
            deadline = time.monotonic() + max_hold_s
            while not done.wait(0.1) and time.monotonic() < deadline and pid_exists(git_pid):
                pass
            client.query("state-leave", watch_root, STATE_NAME)
        finally:
            if _read_pid(pidfile) == os.getpid():
                pidfile.unlink(missing_ok=True)
    except pywatchman.WatchmanError:
        return 1
    finally:
        client.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="watchreload-git-hooks")
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser("install", help="install the hooks into a repository")
    install.add_argument("repo", nargs="?", default=".")
    uninstall = commands.add_parser("uninstall", help="remove the hooks, restore chained ones")
    uninstall.add_argument("repo", nargs="?", default=".")
    commands.add_parser("enter", help="(run by pre-rebase) declare the state")
    leave_cmd = commands.add_parser("leave", help="(run by post-* hooks) end the state")
    leave_cmd.add_argument("--hook", default="")
    leave_cmd.add_argument("hook_args", nargs="*")
    hold_cmd = commands.add_parser("hold", help="(internal) the process that holds the state")
    hold_cmd.add_argument("root")
    hold_cmd.add_argument("pidfile", type=Path)
    hold_cmd.add_argument("max_hold_s", type=float)
    hold_cmd.add_argument("git_pid", type=int)
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            for path in install_git_hooks(Path(args.repo)):
                print(f"installed {path}")
            return 0
        if args.command == "uninstall":
            for path in uninstall_git_hooks(Path(args.repo)):
                print(f"removed {path}")
            return 0
        if args.command == "enter":
            return enter(Path.cwd())
        if args.command == "leave":
            return leave(Path.cwd(), args.hook)
        return hold(args.root, args.pidfile, args.max_hold_s, args.git_pid)
    except WatchreloadError as exc:
        print(f"watchreload: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
