"""Forwarded events against `auto`'s polling, on the same FUSE mount of the tree.

bindfs mounts the tree at `.work/mnt-N`, as a Docker Desktop bind mount would show it in a
container: a write to the tree itself (the "host") sends no event through the mount. The same
`python -m watchreload -- python child.py` runs in the mount, where `--backend=auto` polls:

- `fuse-polling`: alone, so it polls the mount every second;
- `fuse-forwarded`: with `python -m watchreload forward --backend watchman TREE:MOUNT --exec
  'python -m watchreload receive'` on the tree (a Watchman daemon of its own), so it takes the
  forwarded events and stops polling.

Figures, as in the end-to-end rows: edit (written to the tree) → new child p50/p95, children
started by a 5,000-file `git checkout other`; and the idle CPU, over `mode.idle_s`, of the
container-side watchreload, of bindfs (the file-sharing layer, which serves every stat of a
poll), and of the host side (the forwarder and its daemon).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks import e2e
from benchmarks.measure import PYTHON, Mode, cpu_seconds
from benchmarks.procs import Spawned, WatchmanDaemon, wait_until
from benchmarks.trees import Manifest, git, reset_tree

ROWS = {
    "fuse-polling": "watchreload -- python child.py on the FUSE mount (auto: polling)",
    "fuse-forwarded": "the same, with watchreload forward from the tree (Watchman)",
}
START_TIMEOUT_S = 600.0  # the first scan of 100,000 files through FUSE


@contextlib.contextmanager
def bindfs_mount(source: Path, mount_point: Path, log_dir: Path) -> Iterator[Spawned]:
    """`source` mounted at `mount_point` by a bindfs in the foreground; always unmounted."""
    bindfs = shutil.which("bindfs")
    if bindfs is None:
        raise RuntimeError("bindfs is not installed (sudo apt-get install bindfs)")
    mount_point.mkdir(parents=True, exist_ok=True)
    proc = Spawned(
        [bindfs, "-f", str(source), str(mount_point)],
        log_path=log_dir / f"bindfs-{mount_point.name}.log",
        capture_stdout=False,
    )
    try:
        wait_until(lambda: os.path.ismount(mount_point) or not proc.alive(), 20.0, "bindfs")
        if not os.path.ismount(mount_point):
            raise RuntimeError(f"bindfs could not mount: {proc.log_tail()}")
        yield proc
    finally:
        fusermount = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount"
        if os.path.ismount(mount_point):
            done = subprocess.run([fusermount, "-u", str(mount_point)], check=False)
            if done.returncode != 0:
                subprocess.run([fusermount, "-u", "-z", str(mount_point)], check=False)
        proc.stop()


def _container_side(mount: Path, env: dict[str, str], log_dir: Path, n: int) -> Spawned:
    return Spawned(
        [PYTHON, "-m", "watchreload", "--backend", "auto", "--", *e2e.CHILD_ARGV],
        log_path=log_dir / f"fuse-container-{n}-{mount.name}.log",
        env=env,
        cwd=mount,
        capture_stdout=False,
    )


def _forwarder(root: Path, mount: Path, env: dict[str, str], log_dir: Path, n: int) -> Spawned:
    receive = f"{PYTHON} -m watchreload receive"
    forward = [PYTHON, "-m", "watchreload", "forward", "--backend", "watchman"]
    return Spawned(
        [*forward, f"{root}:{mount}", "--exec", receive],
        log_path=log_dir / f"fuse-forwarder-{n}.log",
        env=env,
        cwd=root,
        capture_stdout=False,
    )


def _idle_cpu(pids: dict[str, int], idle_s: float) -> dict[str, float]:
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    time.sleep(idle_s)
    elapsed = time.monotonic() - started
    return {
        f"idle_cpu_{name}_pct": round(100 * (cpu_seconds(pid) - before[name]) / elapsed, 2)
        for name, pid in pids.items()
    }


def _checkout(
    proc: Spawned, log: Path, sampler: e2e.ChildSampler, manifest: Manifest
) -> dict[str, Any]:
    """`git checkout other` on the tree: the children it started, and when the last did."""
    root = Path(manifest.root)
    git(root, "reset", "-q", "--hard")  # the edits' appends would stop the checkout
    e2e._settle(log, e2e.QUIET_S, 60.0)
    t0 = time.monotonic()
    git(root, "checkout", "-q", "other")
    t1 = time.monotonic()
    settled = e2e._settle(log, e2e.BURST_QUIET_S, e2e.BURST_TIMEOUT_S)
    after = [s for s in e2e._starts(log) if t0 <= s[0]]
    return {
        "checkout_settled": settled,
        "checkout_restarts": len(after),
        "checkout_spawned": sampler.spawned_between(t0, time.monotonic()),
        "checkout_last_after_git_s": round(after[-1][0] - t1, 3) if after else None,
    }


def measure_row(name: str, manifest: Manifest, mode: Mode, workdir: Path) -> dict[str, Any]:
    root, n = Path(manifest.root), manifest.n_files
    log = workdir / f"{name}-{n}.starts"
    log.unlink(missing_ok=True)
    runtime = tempfile.mkdtemp(prefix="wr-bench-")  # a short path: unix sockets are limited
    env = {**os.environ, "BENCH_CHILD_LOG": str(log), "XDG_RUNTIME_DIR": runtime}
    env.pop("PYTHONPATH", None)
    reset_tree(manifest)
    try:
        with bindfs_mount(root, workdir / f"mnt-{n}-{name}", workdir) as bindfs:
            return _measure_mounted(name, manifest, mode, workdir, env, bindfs)
    finally:
        e2e._kill_ours(log)
        shutil.rmtree(runtime, ignore_errors=True)
        reset_tree(manifest)


def _measure_mounted(
    name: str, manifest: Manifest, mode: Mode, workdir: Path, env: dict[str, str], bindfs: Spawned
) -> dict[str, Any]:
    """The row, with the mount up; everything it starts is stopped before the unmount."""
    root, n, log = Path(manifest.root), manifest.n_files, Path(env["BENCH_CHILD_LOG"])
    mount = workdir / f"mnt-{n}-{name}"
    rng = random.Random(f"{mode.seed}-{name}")
    result: dict[str, Any] = {"command": name, "label": ROWS[name]}
    started: list[Spawned] = []
    daemon: WatchmanDaemon | None = None
    sampler: e2e.ChildSampler | None = None
    try:
        t = time.monotonic()
        container = _container_side(mount, env, workdir, n)
        started.append(container)
        sampler = e2e.ChildSampler(container.pid)
        wait_until(lambda: e2e._starts(log), START_TIMEOUT_S, "the first child")
        result["first_child_s"] = round(time.monotonic() - t, 1)
        pids = {"container": container.pid, "bindfs": bindfs.pid}
        if name == "fuse-forwarded":
            daemon = WatchmanDaemon(workdir / "watchman" / f"fuse-{n}")
            daemon.start()
            host_env = {**env, "WATCHMAN_SOCK": daemon.sockname}
            forwarder = _forwarder(root, mount, host_env, workdir, n)
            started.append(forwarder)
            wait_until(
                lambda: "on forwarded events" in container.log_tail(50),
                START_TIMEOUT_S,
                "the container side on forwarded events",
            )
            pids |= {"forwarder": forwarder.pid, "daemon": daemon.pid}
        e2e._settle(log, e2e.QUIET_S, 60.0)
        result.update(e2e._edit_to_child(_Named(name), container, log, manifest, mode, rng))
        e2e._settle(log, e2e.QUIET_S, 60.0)
        result.update(_idle_cpu(pids, mode.idle_s))
        result.update(_checkout(container, log, sampler, manifest))
        result["container_log"] = container.log_tail(5)
    finally:
        if sampler is not None:
            sampler.stop()
        for proc in reversed(started):
            proc.stop()
        if daemon is not None:
            daemon.stop()
    return result


class _Named:
    """What e2e's edit loop needs of a command: its name, for messages."""

    def __init__(self, name: str) -> None:
        self.name = name


def measure_all(
    manifest: Manifest,
    mode: Mode,
    workdir: Path,
    only: list[str] | None,
    log: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name in ROWS:
        if only and name not in only:
            continue
        t = time.monotonic()
        try:
            results[name] = measure_row(name, manifest, mode, workdir)
            log(f"  {name}: done in {time.monotonic() - t:.0f}s")
        except Exception as exc:
            results[name] = {"label": ROWS[name], "error": str(exc)}
            log(f"  {name}: FAILED after {time.monotonic() - t:.0f}s: {exc}")
    return results


def table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| on the FUSE mount | edit→new child p50 / p95 (ms) | missed | idle CPU, container "
        "watchreload / bindfs / forwarder / its daemon (% core) | children started by a "
        "5,000-file checkout |",
        "|---|---|---|---|---|",
    ]
    for r in rows.values():
        if "error" in r:
            lines.append(f"| {r['label']} | error: {r['error'].splitlines()[0][:120]} | | | |")
            continue
        cpu = " / ".join(
            f"{r[key]:.2f}" if key in r else "-"
            for key in (
                f"idle_cpu_{part}_pct" for part in ("container", "bindfs", "forwarder", "daemon")
            )
        )
        p50 = "-" if r["p50_ms"] is None else f"{r['p50_ms']:.0f}"
        p95 = "-" if r["p95_ms"] is None else f"{r['p95_ms']:.0f}"
        lines.append(
            f"| {r['label']} | {p50} / {p95} | {r['missed']} of {r['edits']} | {cpu} | "
            f"{r['checkout_restarts']} |"
        )
    return lines
