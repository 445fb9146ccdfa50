"""The measurement protocol, the same for every watcher: one worker process, bounded waits."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.procs import Deadline, Spawned, WatchmanDaemon, peak_rss_bytes, wait_until
from benchmarks.trees import SCRATCH_PREFIX, Manifest, git, ignored_edit_targets, reset_tree

PYTHON = sys.executable
REPO_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WatcherSpec:
    name: str  # the worker's name for it (benchmarks/worker.py WATCHERS)
    label: str  # what the table calls it
    uses_watchman: bool
    polls: bool  # a polling watcher: its waits scale with its scan time


WATCHERS: tuple[WatcherSpec, ...] = (
    WatcherSpec("pywatchman", "Watchman subscription (floor)", True, False),
    WatcherSpec("watchreload-watchman", "watchreload WatchmanReloader", True, False),
    WatcherSpec("watchreload-stat", "watchreload StatReloader", False, True),
    WatcherSpec("django-watchman", "Django WatchmanReloader", True, False),
    WatcherSpec("django-stat", "Django StatReloader", False, True),
    WatcherSpec("watchfiles", "watchfiles.watch", False, False),
    WatcherSpec("watchdog", "watchdog InotifyObserver", False, False),
)


@dataclass(frozen=True)
class Mode:
    name: str
    sizes: tuple[int, ...]
    edits: int
    idle_s: float
    burst_files: int
    branch_diff: int
    scan_reps: int
    e2e_edits: int
    seed: int = 20261122


QUICK = Mode(
    "quick",
    (10_000,),
    edits=20,
    idle_s=10.0,
    burst_files=5000,
    branch_diff=5000,
    scan_reps=5,
    e2e_edits=20,
)
FULL = Mode(
    "full",
    (10_000, 100_000),
    edits=30,
    idle_s=10.0,
    burst_files=5000,
    branch_diff=5000,
    scan_reps=5,
    e2e_edits=20,
)


@dataclass
class Event:
    kind: str  # "F" one file, "B" one delivery
    t: float
    n: int
    paths: frozenset[str]


@dataclass
class EventStream:
    """The parsed notifications of one worker."""

    proc: Spawned
    events: list[Event] = field(default_factory=list)
    _consumed: int = 0

    def poll(self) -> list[Event]:
        lines = self.proc.snapshot(self._consumed)
        self._consumed += len(lines)
        for line in lines:
            kind, _, rest = line.partition(" ")
            if kind == "F":
                t, _, path = rest.partition(" ")
                self.events.append(Event("F", float(t), 1, frozenset([path])))
            elif kind == "B":
                t, n, *shown = rest.split(" ", 2)
                paths = frozenset(shown[0].split("\t")) if shown and shown[0] else frozenset()
                self.events.append(Event("B", float(t), int(n), paths))
        if not self.proc.alive():
            raise RuntimeError(
                f"worker {self.proc.args[3]} exited ({self.proc.popen.returncode}):\n"
                + self.proc.log_tail()
            )
        return self.events

    def since(self, t: float, kind: str | None = None) -> list[Event]:
        return [e for e in self.poll() if e.t >= t and (kind is None or e.kind == kind)]

    def last_t(self) -> float | None:
        events = self.poll()
        return events[-1].t if events else None

    def settle(self, quiet_s: float, timeout_s: float) -> bool:
        """Wait until nothing has been reported for `quiet_s`; False if that never happened."""
        start = time.monotonic()
        try:
            wait_until(
                lambda: time.monotonic() - max(start, self.last_t() or 0.0) >= quiet_s,
                timeout_s,
                "the watcher to go quiet",
                interval_s=0.05,
            )
        except Deadline:
            return False
        return True


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


@dataclass
class Timing:
    """Waits for one watcher on one tree: polling watchers get longer ones."""

    quiet_s: float
    edit_timeout_s: float
    burst_timeout_s: float
    ready_timeout_s: float
    jitter_s: tuple[float, float]

    @classmethod
    def for_watcher(cls, spec: WatcherSpec, scan_s: float, n_files: int) -> Timing:
        big = n_files > 20_000
        if spec.polls:
            period = 1.0 + scan_s
            return cls(
                quiet_s=2 * period + 0.5,
                edit_timeout_s=3 * period + 2,
                burst_timeout_s=60 + 10 * period,
                ready_timeout_s=60 + 5 * period,
                jitter_s=(0.05, 0.05 + period),  # a uniform phase against the poll
            )
        return cls(
            quiet_s=2.5,
            edit_timeout_s=5.0,
            burst_timeout_s=120.0 if big else 60.0,
            ready_timeout_s=300.0 if big else 60.0,
            jitter_s=(0.05, 0.3),
        )


def measure_watcher(
    spec: WatcherSpec, manifest: Manifest, mode: Mode, workdir: Path, scan_s: float
) -> dict[str, Any]:
    """Run the whole protocol for one watcher; return its figures."""
    root = Path(manifest.root)
    timing = Timing.for_watcher(spec, scan_s, manifest.n_files)
    rng = random.Random(f"{mode.seed}-{spec.name}")
    result: dict[str, Any] = {"watcher": spec.name, "label": spec.label}
    reset_tree(manifest)
    daemon = WatchmanDaemon(workdir / "watchman" / spec.name) if spec.uses_watchman else None
    proc: Spawned | None = None
    env = dict(os.environ)
    try:
        if daemon is not None:
            daemon.start()
            env["WATCHMAN_SOCK"] = daemon.sockname
        started = time.monotonic()
        proc = Spawned(
            [PYTHON, "-m", "benchmarks.worker", spec.name, str(root)],
            log_path=workdir / f"worker-{spec.name}-{manifest.n_files}.log",
            env=env,
            cwd=REPO_DIR,
        )
        stream = EventStream(proc)

        # 1. start to first detected change: touch the probe until something is reported
        result["ready_s"] = _first_change(stream, root / manifest.probe, started, timing, spec)
        stream.settle(timing.quiet_s, timing.burst_timeout_s)

        # 2. change-to-notification latency over single-file edits
        result.update(_edit_latencies(stream, manifest, mode, timing, rng))

        # 3. idle CPU of the watcher and of the daemon
        stream.settle(timing.quiet_s, timing.burst_timeout_s)
        result.update(_idle(stream, proc, daemon, mode))

        # 4. writes under ignored directories: node_modules/, .venv/, __pycache__/
        result["ignored"] = _ignored_writes(stream, manifest, timing)
        reset_tree(manifest)
        stream.settle(timing.quiet_s, timing.burst_timeout_s)

        # 5. a rewrite of burst_files .py files (a formatter over the tree)
        t0 = time.monotonic()
        for n, rel in enumerate(manifest.source_py[: mode.burst_files]):
            append(root / rel, f"# rewrite {n}\n")
        t1 = time.monotonic()
        result["rewrite"] = _burst(stream, t0, t1, timing, mode.burst_files)

        git(root, "reset", "-q", "--hard")
        stream.settle(timing.quiet_s, timing.burst_timeout_s)

        # 6. git checkout of the other branch
        t0 = time.monotonic()
        git(root, "checkout", "-q", "other")
        t1 = time.monotonic()
        result["checkout"] = _burst(stream, t0, t1, timing, manifest.branch_diff)

        result["peak_rss_mb"] = (peak_rss_bytes(proc.pid) or 0) / 2**20
        if daemon is not None:
            result["daemon_peak_rss_mb"] = (peak_rss_bytes(daemon.pid) or 0) / 2**20
    finally:
        if proc is not None:
            proc.stop()
        if daemon is not None:
            daemon.stop()
        reset_tree(manifest)
    return result


def _first_change(
    stream: EventStream, probe: Path, started: float, timing: Timing, spec: WatcherSpec
) -> float:
    """Append to the probe every 100 ms until the worker reports something; seconds from start."""
    deadline = started + timing.ready_timeout_s
    i = 0
    while not stream.poll():
        if time.monotonic() > deadline:
            raise Deadline(f"{spec.name} reported nothing within {timing.ready_timeout_s}s")
        append(probe, f"# probe {i}\n")
        i += 1
        time.sleep(0.1)
    return stream.events[0].t - started


def _edit_latencies(
    stream: EventStream, manifest: Manifest, mode: Mode, timing: Timing, rng: random.Random
) -> dict[str, Any]:
    """Single-file edits, each timed to its first notification and to its batch."""
    root = Path(manifest.root)
    files_lat: list[float] = []
    batch_lat: list[float] = []
    missed = 0
    targets = rng.sample(manifest.source_py[mode.burst_files :], mode.edits)
    for n, rel in enumerate(targets):
        path = root / rel
        key = str(path)
        t_edit = time.monotonic()
        append(path, f"# edit {n}\n")
        try:
            # every watcher ends a notification with a B line; Django prints its B only at
            # the end of the tick (after its sleep), stamped with the time of its first file
            wait_until(
                lambda t=t_edit, k=key: [e for e in stream.since(t, "B") if k in e.paths],
                timeout_s=timing.edit_timeout_s,
                what=f"a notification for {rel}",
            )
        except Deadline:
            missed += 1
            continue
        hits = [e for e in stream.since(t_edit) if key in e.paths]
        files_lat.append(min(e.t for e in hits) - t_edit)
        batch_lat.append(min(e.t for e in hits if e.kind == "B") - t_edit)
        time.sleep(rng.uniform(*timing.jitter_s))
    return {
        "latency_ms": {
            "p50": _ms(percentile(files_lat, 0.5)),
            "p95": _ms(percentile(files_lat, 0.95)),
            "batch_p50": _ms(percentile(batch_lat, 0.5)),
            "batch_p95": _ms(percentile(batch_lat, 0.95)),
            "all": [round(x * 1000, 2) for x in files_lat],
        },
        "edits": mode.edits,
        "missed": missed,
    }


def _idle(
    stream: EventStream, proc: Spawned, daemon: WatchmanDaemon | None, mode: Mode
) -> dict[str, Any]:
    """CPU of the worker (and its daemon) over `mode.idle_s` with nothing changing."""
    figures: dict[str, Any] = {}
    t_idle = time.monotonic()
    cpu0 = cpu_seconds(proc.pid)
    daemon_cpu0 = cpu_seconds(daemon.pid) if daemon else 0.0
    time.sleep(mode.idle_s)
    elapsed = time.monotonic() - t_idle
    figures["idle_cpu_pct"] = 100 * (cpu_seconds(proc.pid) - cpu0) / elapsed
    if daemon is not None:
        figures["daemon_idle_cpu_pct"] = 100 * (cpu_seconds(daemon.pid) - daemon_cpu0) / elapsed
    figures["idle_notifications"] = len(stream.since(t_idle, "B"))
    return figures


def _ignored_writes(stream: EventStream, manifest: Manifest, timing: Timing) -> dict[str, int]:
    """Appends under node_modules/ and .venv/ and new .pyc files: what was reported of them."""
    root = Path(manifest.root)
    t_ignored = time.monotonic()
    for rel in ignored_edit_targets(manifest):
        append(root / rel, "# bench edit\n")
    for k, directory in enumerate(manifest.pycache_dirs[:10]):
        (root / directory / f"{SCRATCH_PREFIX}{k}.cpython-311.pyc").write_bytes(b"\0pyc\0")
    time.sleep(timing.quiet_s + 0.5)
    ignored = stream.since(t_ignored)
    return {
        "writes": len(ignored_edit_targets(manifest)) + min(10, len(manifest.pycache_dirs)),
        "batches": sum(1 for e in ignored if e.kind == "B"),
        "files": _files_reported(ignored),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _files_reported(events: list[Event]) -> int:
    batches = [e for e in events if e.kind == "B"]
    return sum(e.n for e in batches)


def _burst(
    stream: EventStream, t0: float, t1: float, timing: Timing, expected: int
) -> dict[str, Any]:
    settled = stream.settle(timing.quiet_s, timing.burst_timeout_s)
    batches = stream.since(t0, "B")
    return {
        "changed": expected,
        "write_s": round(t1 - t0, 3),
        "batches": len(batches),
        "files_reported": sum(e.n for e in batches),
        "first_after_start_s": round(batches[0].t - t0, 3) if batches else None,
        "last_after_end_s": round(batches[-1].t - t1, 3) if batches else None,
        "settled": settled,
    }


# -- StatReloader scan vs Django's tick, in a process of its own --------------------------------


def measure_scan(manifest: Manifest, reps: int, workdir: Path) -> dict[str, Any]:
    out = workdir / f"scan-{manifest.n_files}.json"
    done = subprocess.run(
        [PYTHON, "-m", "benchmarks.scanbench", manifest.root, str(reps), str(out)],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=120 + reps * 60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scanbench failed:\n{done.stderr[-2000:]}")
    import json

    return dict(json.loads(out.read_text()))


def median(values: list[float]) -> float:
    return statistics.median(values)
