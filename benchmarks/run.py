"""One run: build the trees, measure every watcher on each, write raw JSON and markdown."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks import e2e, forwarded
from benchmarks.measure import WATCHERS, Mode, measure_scan, measure_watcher
from benchmarks.report import render
from benchmarks.trees import build_tree

logger = logging.getLogger(__name__)

BENCH_DIR = Path(__file__).resolve().parent
WORK_DIR = BENCH_DIR / ".work"
RESULTS_DIR = BENCH_DIR / "results"


def machine() -> dict[str, Any]:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        watchman = subprocess.run(
            ["/usr/bin/watchman", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        watchman = "unavailable"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR.parent,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "watchreload"],
            cwd=BENCH_DIR.parent,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split("\n")
        if any(line.strip() for line in dirty):
            commit += " + uncommitted changes in watchreload/"
    except (OSError, subprocess.TimeoutExpired):
        commit = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "watchman": watchman,
        "django": version("django"),
        "watchfiles": version("watchfiles"),
        "watchdog": version("watchdog"),
        "pywatchman": version("pywatchman"),
        "commit": commit,
    }


def _header(mode: Mode, command: str) -> dict[str, Any]:
    """What a run's results say about the run itself (the load's "end" is added at the end)."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": mode.name,
        "command": command,
        "machine": machine(),
        "settings": {k: v for k, v in vars(mode).items()},
        "load": {"start": [round(x, 2) for x in os.getloadavg()]},
        "trees": {},
    }


def run(mode: Mode, only: list[str] | None, command: str) -> Path:
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = WORK_DIR / f"run-{stamp}"
    workdir.mkdir(parents=True)
    results = _header(mode, command)
    for size in mode.sizes:
        t = time.monotonic()
        manifest = build_tree(WORK_DIR / "trees" / f"t{size}", size, mode.seed, mode.branch_diff)
        tree: dict[str, Any] = {
            "tree": {
                "files": size,
                "py_watched": len(manifest.source_py) + 1,
                "branch_diff": manifest.branch_diff,
                "build_s": round(time.monotonic() - t, 1),
            },
            "watchers": {},
        }
        results["trees"][str(size)] = tree
        log(f"tree {size:,}: ready in {tree['tree']['build_s']}s")
        scan = measure_scan(manifest, mode.scan_reps, workdir)
        tree["scan"] = scan
        log(
            f"  scan: watchreload {scan['watchreload_median_s'] * 1000:.0f} ms, "
            f"Django {scan['django_median_s'] * 1000:.0f} ms ({scan['speedup']:.1f}x)"
        )
        for spec in WATCHERS:
            if only and spec.name not in only:
                continue
            scan_s = {
                "watchreload-stat": scan["watchreload_median_s"],
                "django-stat": scan["django_median_s"],
            }.get(spec.name, 0.0)
            t = time.monotonic()
            try:
                tree["watchers"][spec.name] = measure_watcher(spec, manifest, mode, workdir, scan_s)
                log(f"  {spec.name}: done in {time.monotonic() - t:.0f}s")
            except Exception as exc:
                logger.debug("%s failed", spec.name, exc_info=True)
                tree["watchers"][spec.name] = {"label": spec.label, "error": str(exc)}
                log(f"  {spec.name}: FAILED after {time.monotonic() - t:.0f}s: {exc}")
        tree["e2e"] = e2e.measure_all(manifest, mode, workdir, only, log)
        tree["fuse"] = forwarded.measure_all(manifest, mode, workdir, only, log)
    results["duration_s"] = time.monotonic() - started
    results["load"]["end"] = [round(x, 2) for x in os.getloadavg()]

    RESULTS_DIR.mkdir(exist_ok=True)
    raw = RESULTS_DIR / f"raw-{stamp}.json"
    raw.write_text(json.dumps(results, indent=1))
    markdown = render(results)
    if only:  # a partial run never replaces the complete tables
        (RESULTS_DIR / "partial.md").write_text(markdown)
        log(f"wrote {raw.relative_to(BENCH_DIR.parent)} and benchmarks/results/partial.md")
        return raw
    (RESULTS_DIR / f"{mode.name}-latest.json").write_text(json.dumps(results, indent=1))
    (RESULTS_DIR / f"{mode.name}-latest.md").write_text(markdown)
    (RESULTS_DIR / "latest.md").write_text(markdown)
    log(f"wrote {raw.relative_to(BENCH_DIR.parent)} and benchmarks/results/latest.md")
    return raw


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
