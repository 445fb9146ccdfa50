"""Exec vs fork from a preloaded template, for a Django startproject site; and the staleness check.

    .venv/bin/python -m benchmarks.preload_startup [--runs 15] [--json OUT]

In one run, alternating so that machine noise hits both alike:
- `manage.py check`: from the request (Popen, or the fork request) to the exit;
- `manage.py runserver --noreload`: from the request until the port accepts; then SIGINT to the
  group and a bounded wait;
- the staleness check (`Fingerprint.changed()`) per 1,000 files, with inotify and by stat.
The preload list is what an exec'd run imported (its sys.modules at exit), as the agent will
report it; project modules in it are refused by the template. Every process lives in a group of
its own and is killed by group when its step ends; every wait has a deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from watchreload.preload import inotify
from watchreload.preload.client import ForkedChild, Template
from watchreload.preload.staleness import Fingerprint

PYTHON = sys.executable
DEADLINE_S = 60.0
# Put at the top of manage.py: write sys.modules (in import order) at exit when asked to.
RECORD = """\
import atexit as _atexit, os as _os, sys as _sys
if _os.environ.get("BENCH_MODULES_OUT"):
    def _record():
        with open(_os.environ["BENCH_MODULES_OUT"], "w") as f:
            f.write("\\n".join(_sys.modules))
    _atexit.register(_record)
"""


def make_site(root: Path) -> Path:
    root.mkdir()
    subprocess.run(
        [PYTHON, "-m", "django", "startproject", "mysite", str(root)],
        check=True,
        timeout=DEADLINE_S,
        capture_output=True,
    )
    manage = root / "manage.py"
    shebang, _, rest = manage.read_text().partition("\n")
    manage.write_text(f"{shebang}\n{RECORD}{rest}")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.05)
        return s.connect_ex(("127.0.0.1", port)) == 0


def until(condition: Callable[[], bool], what: str, interval_s: float = 0.001) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {DEADLINE_S}s")
        time.sleep(interval_s)


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def record_modules(root: Path, argv: list[str], env: dict[str, str], port: int | None) -> list[str]:
    out = root / "modules.txt"
    process = subprocess.Popen(
        argv, cwd=root, env=dict(env, BENCH_MODULES_OUT=str(out)), process_group=0
    )
    try:
        if port is not None:
            until(lambda: accepts(port), "listening server")
            os.killpg(process.pid, signal.SIGINT)
        process.wait(DEADLINE_S)
    finally:
        kill_group(process.pid)
    return out.read_text().split("\n")


def exec_once(root: Path, argv: list[str], env: dict[str, str], port: int | None) -> float:
    began = time.perf_counter()
    process = subprocess.Popen(argv, cwd=root, env=env, process_group=0)
    try:
        if port is None:
            process.wait(DEADLINE_S)
            took = time.perf_counter() - began
            assert process.returncode == 0, f"exit status {process.returncode}"
            return took
        until(lambda: accepts(port), "listening server")
        took = time.perf_counter() - began
        os.killpg(process.pid, signal.SIGINT)
        process.wait(DEADLINE_S)
        return took
    finally:
        kill_group(process.pid)


def fork_once(template: Template, argv: list[str], env: dict[str, str], port: int | None) -> float:
    cwd = template.key["cwd"]
    began = time.perf_counter()
    child: ForkedChild = template.fork(argv, env, cwd)
    try:
        if port is None:
            code = child.wait(DEADLINE_S)
            took = time.perf_counter() - began
            assert code == 0, f"exit status {code}"
            return took
        until(lambda: accepts(port), "listening server")
        took = time.perf_counter() - began
        child.stop(signal.SIGINT, timeout_s=DEADLINE_S)
        return took
    finally:
        kill_group(child.pid)


def compare(root: Path, argv: list[str], port: int | None, runs: int) -> dict[str, Any]:
    """Alternate exec and fork `runs` times each; medians in ms."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env["PYTHONUNBUFFERED"] = "1"
    preload = record_modules(root, argv, env, port)
    template = Template.for_command(argv, env, str(root), preload)
    try:
        if not template.wait_ready(DEADLINE_S):
            raise RuntimeError(f"the template is not ready: {template.reason}")
        report = template.report
        execs, forks = [], []
        for _ in range(runs + 1):  # the first pair warms the caches and is dropped
            execs.append(exec_once(root, argv, env, port))
            forks.append(fork_once(template, argv, env, port))
        execs, forks = execs[1:], forks[1:]
    finally:
        template.close()
    return {
        "command": " ".join(argv[1:]),
        "runs": runs,
        "exec_ms": round(statistics.median(execs) * 1000, 1),
        "fork_ms": round(statistics.median(forks) * 1000, 1),
        "exec_min_ms": round(min(execs) * 1000, 1),
        "fork_min_ms": round(min(forks) * 1000, 1),
        "preloaded_modules": len(preload) - len(report["failed"]) - len(report["refused"]),
        "failed_modules": len(report["failed"]),
        "refused_modules": report["refused"],
        "template_files": len(report["files"]),
        "template_build_ms": round(report["seconds"] * 1000, 1),
    }


def staleness_cost(files: list[str], repeats: int = 200) -> dict[str, Any]:
    """Median µs of one `changed()` per 1,000 files, with inotify and by stat; and the cost of
    setting it up (the signatures, and the watches)."""
    figures: dict[str, Any] = {}
    for name, notifier in (("inotify", inotify.available()), ("stat", True)):
        if not notifier:
            continue
        try:
            fingerprint = Fingerprint({}, inotify.Inotify() if name == "inotify" else None)
        except OSError as exc:  # EMFILE: the user's inotify instances are used up
            figures[f"{name}_error"] = str(exc)
            continue
        try:
            began = time.perf_counter()
            fingerprint.add("the preloaded file", files)
            figures[f"{name}_setup_ms_per_1000_files"] = round(
                (time.perf_counter() - began) * 1000 * 1000 / len(files), 2
            )
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                assert fingerprint.changed() is None
                times.append(time.perf_counter() - began)
        finally:
            fingerprint.close()
        figures[f"{name}_us_per_1000_files"] = round(
            statistics.median(times) * 1e6 * 1000 / len(files), 1
        )
    return figures


def django_files(count: int) -> list[str]:
    spec = importlib.util.find_spec("django")
    assert spec is not None and spec.origin is not None, "the bench extra installs Django"
    found: list[str] = []
    for directory, _, names in os.walk(os.path.dirname(spec.origin)):
        found.extend(os.path.join(directory, n) for n in names if n.endswith(".py"))
    return sorted(found)[:count]


@contextlib.contextmanager
def quiet_stdio() -> Iterator[None]:
    """stdout and stderr to /dev/null for the exec'd children and the template alike."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="preload-bench-") as directory:
        yield Path(directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args(argv)
    results: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    results["loadavg_before"] = os.getloadavg()
    with scratch() as directory, quiet_stdio():
        root = make_site(directory / "site")
        results["check"] = compare(root, [PYTHON, "manage.py", "check"], None, options.runs)
        port = free_port()
        server = [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
        results["runserver"] = compare(root, server, port, options.runs)
    results["staleness"] = staleness_cost(django_files(1000))
    results["loadavg_after"] = os.getloadavg()
    text = json.dumps(results, indent=2)
    print(text)
    if options.json is not None:
        options.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
