"""One full scan of watchreload's StatReloader vs one tick of Django's StatReloader, same tree.

    python -m benchmarks.scanbench ROOT REPS OUT.json [--profile OUT.prof]

Both watch `**/*.py` under ROOT and nothing else (no imported modules). Runs alternate, after one
warm-up each, so both see the same warm dentry and inode caches. Django's tick is its own
`tick()` generator with SLEEP_TIME set to 0, so each `next()` is exactly one scan and compare.
"""

from __future__ import annotations

import cProfile
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    root, reps, out = Path(argv[0]), int(argv[1]), Path(argv[2])
    profile_out = Path(argv[4]) if len(argv) > 4 and argv[3] == "--profile" else None

    from django.utils import autoreload

    from watchreload.reloaders.stat import StatReloader
    from watchreload.scan import diff_snapshots

    autoreload.iter_all_python_module_files = lambda: frozenset()

    ours = StatReloader(watch_modules=False)
    ours.watch_dir(root, "**/*.py")
    django = autoreload.StatReloader()
    django.watch_dir(root, "**/*.py")
    django.SLEEP_TIME = 0
    ticker = django.tick()

    previous = ours.snapshot()  # warm-up, and the baseline each later scan is compared with

    def our_scan() -> None:
        nonlocal previous
        current = ours.snapshot()
        for _ in diff_snapshots(previous, current):
            pass
        previous = current

    next(ticker)  # Django's first tick: its baseline
    ours_s: list[float] = []
    django_s: list[float] = []
    for _ in range(reps):
        t = time.perf_counter()
        our_scan()
        ours_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        next(ticker)
        django_s.append(time.perf_counter() - t)

    result: dict[str, Any] = {
        "files_watchreload": len(previous),
        "files_django": sum(1 for _ in django.snapshot_files()),
        "watchreload_scan_s": ours_s,
        "django_tick_s": django_s,
        "watchreload_median_s": statistics.median(ours_s),
        "django_median_s": statistics.median(django_s),
    }
    result["speedup"] = result["django_median_s"] / result["watchreload_median_s"]
    if profile_out is not None:
        cProfile.runctx("our_scan()", globals(), locals(), str(profile_out))
    out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
