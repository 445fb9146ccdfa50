"""End to end: the same child program under each supervisor, from an edit to a new child."""

from __future__ import annotations

import importlib.util
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.measure import PYTHON, REPO_DIR, Mode, append, percentile
from benchmarks.procs import Deadline, Spawned, WatchmanDaemon, pid_alive, wait_until
from benchmarks.trees import Manifest, git, reset_tree

CHILD = Path(__file__).resolve().parent / "child.py"
BIN = Path(sys.executable).parent
IGNORED = ("node_modules", ".venv", "__pycache__", ".git")
QUIET_S = 3.0  # no new child for this long: the supervisor has settled
EDIT_TIMEOUT_S = 10.0
BURST_TIMEOUT_S = 90.0
BURST_QUIET_S = 10.0
# --preload: the first restarts are by exec (the template is built once a child's imports have
# been quiet for 0.5 s); warm up with edits this far apart until one is forked, and count only
# the forked ones. watchreload's restart line names the path each restart took.
RESTART_LINE = re.compile(r"^watchreload: restarting: .*$", re.MULTILINE)
FORKED = "(forked from the preloaded template)"
WARMUP_EDITS = 5
WARMUP_PAUSE_S = 3.0


def _watchreload_missing() -> str | None:
    if importlib.util.find_spec("watchreload.cli") is None:
        return "watchreload's CLI (watchreload/cli.py) is not built yet"
    return None


@dataclass(frozen=True)
class Command:
    name: str
    label: str
    argv: Callable[[Path], list[str]]  # the command line, given the watched root
    uses_watchman: bool = False
    missing: Callable[[], str | None] = lambda: None  # why it cannot run here, if it cannot
    default: bool = True  # False: an experiment, run only when named with --only
    preload: bool = False  # watchreload --preload: warm up, count only forked restarts


CHILD_ARGV = [PYTHON, str(CHILD)]

COMMANDS: tuple[Command, ...] = (
    Command(
        "watchreload-watchman",
        "watchreload --backend watchman -- python child.py",
        lambda root: [PYTHON, "-m", "watchreload", "--backend", "watchman", "--", *CHILD_ARGV],
        uses_watchman=True,
        missing=_watchreload_missing,
    ),
    Command(
        "watchreload-preload",
        "watchreload --backend watchman --preload --scope tree -- python child.py",
        # --scope tree: child.py imports none of the tree. --preload asks the idle child for its
        # imports (to build the template), and then the default scope (imports) knows that and
        # restarts on none of the edits; the other rows restart on any .py change, so this does.
        lambda root: [
            PYTHON,
            "-m",
            "watchreload",
            "--backend",
            "watchman",
            "--preload",
            "--scope",
            "tree",
            "--",
            *CHILD_ARGV,
        ],
        uses_watchman=True,
        missing=_watchreload_missing,
        preload=True,
    ),
    Command(
        "watchreload-preload-debounce10",
        "watchreload --backend watchman --preload --scope tree --debounce 10 -- python child.py "
        "(experiment)",
        lambda root: [
            PYTHON,
            "-m",
            "watchreload",
            "--backend",
            "watchman",
            "--preload",
            "--scope",
            "tree",
            "--debounce",
            "10",
            "--",
            *CHILD_ARGV,
        ],
        uses_watchman=True,
        missing=_watchreload_missing,
        preload=True,
        default=False,
    ),
    Command(
        "watchreload-watchman-debounce10",
        "watchreload --backend watchman --debounce 10 -- python child.py (experiment)",
        lambda root: [
            PYTHON,
            "-m",
            "watchreload",
            "--backend",
            "watchman",
            "--debounce",
            "10",
            "--",
            *CHILD_ARGV,
        ],
        uses_watchman=True,
        missing=_watchreload_missing,
        default=False,
    ),
    Command(
        "watchreload-stat",
        "watchreload --backend stat -- python child.py",
        lambda root: [PYTHON, "-m", "watchreload", "--backend", "stat", "--", *CHILD_ARGV],
        missing=_watchreload_missing,
    ),
    Command(
        "watchfiles",
        "watchfiles --filter python 'python child.py'",
        lambda root: [
            str(BIN / "watchfiles"),
            "--filter",
            "python",
            "--target-type",
            "command",
            " ".join(CHILD_ARGV),
            str(root),
        ],
    ),
    Command(
        "watchmedo",
        "watchmedo auto-restart --patterns '**/*.py' -R -- python child.py",
        lambda root: [
            str(BIN / "watchmedo"),
            "auto-restart",
            "--directory",
            str(root),
            "--patterns",
            "**/*.py",  # watchdog 7 matches whole paths: '*.py' alone matches nothing
            "--recursive",
            "--ignore-patterns",
            ";".join(f"**/{d}/**" for d in IGNORED),
            "--",
            *CHILD_ARGV,
        ],
    ),
)


def _starts(log: Path) -> list[tuple[float, int, int]]:
    try:
        text = log.read_text()
    except FileNotFoundError:
        return []
    starts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            starts.append((float(parts[0]), int(parts[1]), int(parts[2])))
    return starts


def _settle(log: Path, quiet_s: float, timeout_s: float) -> bool:
    start = time.monotonic()

    def quiet() -> bool:
        starts = _starts(log)
        last = max(start, starts[-1][0] if starts else 0.0)
        return time.monotonic() - last >= quiet_s

    try:
        wait_until(quiet, timeout_s, "the supervisor to settle", interval_s=0.05)
    except Deadline:
        return False
    return True


def _ours(pid: int) -> bool:
    """A pid that our child or grandchild had: checked before it is killed, in case of reuse."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    # A child forked from --preload's template keeps the template's command line (python -c ...)
    forked = b"_watchreload_preload" in cmdline
    return b"child.py" in cmdline or forked or cmdline.startswith(b"sleep\x00600")


class ChildSampler:
    """Notes every child process of the supervisor, from /proc, every few milliseconds.

    A supervisor that restarts faster than Python starts kills children before they can log
    their start, so the log alone undercounts restarts; this counts what was spawned.
    """

    def __init__(self, pid: int, interval_s: float = 0.01) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.first_seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = time.monotonic()
            for child in _children(self.pid):
                self.first_seen.setdefault(child, now)

    def spawned_between(self, t0: float, t1: float) -> int:
        return sum(1 for t in list(self.first_seen.values()) if t0 <= t < t1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return found


def measure_command(
    command: Command, manifest: Manifest, mode: Mode, workdir: Path
) -> dict[str, Any]:
    root = Path(manifest.root)
    rng = random.Random(f"{mode.seed}-e2e-{command.name}")
    result: dict[str, Any] = {"command": command.name, "label": command.label}
    log = workdir / f"e2e-{command.name}-{manifest.n_files}.starts"
    log.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_CHILD_LOG": str(log)}
    env.pop("PYTHONPATH", None)
    reset_tree(manifest)
    daemon = (
        WatchmanDaemon(workdir / "watchman" / f"e2e-{command.name}")
        if command.uses_watchman
        else None
    )
    proc: Spawned | None = None
    sampler: ChildSampler | None = None
    try:
        if daemon is not None:
            daemon.start()
            env["WATCHMAN_SOCK"] = daemon.sockname
        started = time.monotonic()
        proc = Spawned(
            command.argv(root),
            log_path=workdir / f"e2e-{command.name}-{manifest.n_files}.log",
            env=env,
            cwd=root,
            capture_stdout=False,
        )
        sampler = ChildSampler(proc.pid)
        first = wait_until(lambda: _starts(log), 120.0, f"{command.name} to start the child")
        result["first_child_s"] = first[0][0] - started
        _settle(log, QUIET_S, 30.0)
        if command.preload:
            result["warmup"] = _warm_up(proc, log, manifest)
            _settle(log, QUIET_S, 30.0)

        result.update(_edit_to_child(command, proc, log, manifest, mode, rng))

        _settle(log, QUIET_S, 30.0)
        result.update(_burst_restarts(proc, log, sampler, manifest, mode))
        git(root, "reset", "-q", "--hard")
        if proc.alive():
            _settle(log, BURST_QUIET_S, BURST_TIMEOUT_S)

        result.update(_survivors(log))
    finally:
        if sampler is not None:
            sampler.stop()
        if proc is not None:
            proc.stop()
        _kill_ours(log)
        if daemon is not None:
            daemon.stop()
        reset_tree(manifest)
    return result


def _restart_lines(proc: Spawned) -> list[str]:
    try:
        return RESTART_LINE.findall(proc.log_path.read_text(errors="replace"))
    except OSError:
        return []


def _path_taken(proc: Spawned, before: int) -> str:
    """The restart line after the first `before` ones (printed before the child is started)."""
    try:
        lines = wait_until(lambda: _restart_lines(proc)[before:], 2.0, "the restart line")
    except Deadline:
        return "no restart line"
    return lines[-1]


def _one_edit(proc: Spawned, log: Path, path: Path, text: str) -> tuple[float | None, str]:
    """Append to `path`: the time to the next child's start (None: missed), and the restart line."""
    before = len(_restart_lines(proc))
    t_edit = time.monotonic()
    append(path, text)
    try:
        new = wait_until(
            lambda: [s for s in _starts(log) if s[0] > t_edit], EDIT_TIMEOUT_S, "a new child"
        )
    except Deadline:
        return None, _path_taken(proc, before)
    return new[0][0] - t_edit, _path_taken(proc, before)


def _warm_up(proc: Spawned, log: Path, manifest: Manifest) -> list[str]:
    """--preload: edit, WARMUP_PAUSE_S apart, until a restart is forked; the restart lines."""
    root = Path(manifest.root)
    lines: list[str] = []
    for n, rel in enumerate(manifest.source_py[-WARMUP_EDITS:]):
        _, line = _one_edit(proc, log, root / rel, f"# e2e warm-up {n}\n")
        lines.append(line)
        if line.endswith(FORKED):
            break
        time.sleep(WARMUP_PAUSE_S)
    return lines


def _edit_to_child(
    command: Command,
    proc: Spawned,
    log: Path,
    manifest: Manifest,
    mode: Mode,
    rng: random.Random,
) -> dict[str, Any]:
    """Single-file edits, each timed from just before the write to the next child's start.

    With --preload, only restarts forked from the template count; the others are listed apart.
    """
    root = Path(manifest.root)
    latencies: list[float] = []
    by_exec: list[tuple[float, str]] = []
    missed = 0
    targets = rng.sample(manifest.source_py[mode.burst_files :], mode.e2e_edits)
    for n, rel in enumerate(targets):
        if not proc.alive():
            raise RuntimeError(f"{command.name} exited:\n{proc.log_tail()}")
        latency, line = _one_edit(proc, log, root / rel, f"# e2e edit {n}\n")
        if latency is None:
            missed += 1
            continue
        if command.preload and not line.endswith(FORKED):
            by_exec.append((latency, line))
        else:
            latencies.append(latency)
        _settle(log, 0.5, 10.0)
        time.sleep(rng.uniform(0.05, 0.3))
    result = {
        "edits": mode.e2e_edits,
        "missed": missed,
        "p50_ms": None if not latencies else 1000 * (percentile(latencies, 0.5) or 0),
        "p95_ms": None if not latencies else 1000 * (percentile(latencies, 0.95) or 0),
        "all_ms": [round(x * 1000, 1) for x in latencies],
    }
    if command.preload:
        result.update(_by_exec_figures(latencies, by_exec))
    return result


def _by_exec_figures(forked: list[float], by_exec: list[tuple[float, str]]) -> dict[str, Any]:
    reasons: dict[str, int] = {}
    for _, line in by_exec:
        reason = line.partition("(by exec: ")[2].removesuffix(")") or line
        reasons[reason] = reasons.get(reason, 0) + 1
    p50 = percentile([x for x, _ in by_exec], 0.5) if by_exec else None
    return {
        "forked": len(forked),
        "by_exec": reasons,
        "by_exec_p50_ms": None if p50 is None else 1000 * p50,
    }


def _burst_restarts(
    proc: Spawned, log: Path, sampler: ChildSampler, manifest: Manifest, mode: Mode
) -> dict[str, Any]:
    """Rewrite burst_files watched files at once: how many children that started, and when."""
    root = Path(manifest.root)
    figures: dict[str, Any] = {}
    t0 = time.monotonic()
    for n, rel in enumerate(manifest.source_py[: mode.burst_files]):
        append(root / rel, f"# e2e rewrite {n}\n")
    t1 = time.monotonic()
    # watchmedo takes seconds to work through a burst's events: wait for a long quiet spell
    figures["burst_settled"] = _settle(log, BURST_QUIET_S, BURST_TIMEOUT_S)
    t_reset = time.monotonic()
    after = [s for s in _starts(log) if t0 <= s[0] < t_reset]
    figures["burst_restarts"] = len(after)
    figures["burst_spawned"] = sampler.spawned_between(t0, t_reset)
    figures["burst_spawning_at_end"] = sampler.spawned_between(t_reset - 2.0, t_reset) > 0
    figures["burst_last_after_end_s"] = round(after[-1][0] - t1, 3) if after else None
    figures["supervisor_alive"] = proc.alive()
    if not proc.alive():
        lines = [x for x in proc.log_tail(40).splitlines() if x.strip()]
        figures["supervisor_exit"] = f"exited {proc.popen.returncode}: {lines[-1] if lines else ''}"
    return figures


def _survivors(log: Path) -> dict[str, Any]:
    """Children started in all, and which child or grandchild of an earlier start is alive."""
    starts = _starts(log)
    old = [
        (kind, pid) for _, c, g in starts[:-1] for kind, pid in (("child", c), ("grandchild", g))
    ]
    return {
        "children_started": len(starts),
        "survivors": [f"{kind} {pid}" for kind, pid in old if pid_alive(pid) and _ours(pid)],
    }


def _kill_ours(log: Path) -> None:
    """SIGKILL every logged child and grandchild still alive (after checking it is ours)."""
    for _, child, grandchild in _starts(log):
        for pid in (child, grandchild):
            if pid_alive(pid) and _ours(pid):
                os.kill(pid, 9)


def measure_all(
    manifest: Manifest,
    mode: Mode,
    workdir: Path,
    only: list[str] | None,
    log: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for command in COMMANDS:
        if (only and f"e2e-{command.name}" not in only) or (not only and not command.default):
            continue
        reason = command.missing()
        if reason is not None:
            results[command.name] = {"label": command.label, "error": f"not run: {reason}"}
            log(f"  e2e {command.name}: not run: {reason}")
            continue
        t = time.monotonic()
        try:
            results[command.name] = measure_command(command, manifest, mode, workdir)
            log(f"  e2e {command.name}: done in {time.monotonic() - t:.0f}s")
        except Exception as exc:
            results[command.name] = {"label": command.label, "error": str(exc)}
            log(f"  e2e {command.name}: FAILED after {time.monotonic() - t:.0f}s: {exc}")
    return results


__all__ = ["COMMANDS", "REPO_DIR", "measure_all"]
