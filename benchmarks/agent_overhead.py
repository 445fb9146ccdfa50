"""The agent's start-up overhead on a Django project: python -m benchmarks.agent_overhead

The benchmarks have no Django project of their own, so this generates one with
`django-admin startproject` in a temporary directory and times, with and without the agent
(PYTHONPATH and the socket as `AgentChannel.start_run` sets them, the channel reading in this
process), alternating the order every round, after a warm-up of each:

- `check`: `python manage.py check`, from spawn to exit;
- `runserver`: `python manage.py runserver --noreload 127.0.0.1:PORT`, from spawn until a TCP
  connection to the port succeeds (polled every 2 ms), then the server's session is killed.

It prints the median wall and CPU (user + system, from wait4) time of each, their ratio with /
without (the issue's target: at most 1.05), and the median of the per-round ratios, which is
steadier on a shared machine. Exit status 1 when the wall-time ratio of medians is over target.
"""

from __future__ import annotations

import argparse
import contextlib
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

from watchreload.agent.channel import AgentChannel, without_agent

TARGET_RATIO = 1.05
TIMEOUT_S = 60.0


def make_project(directory: Path, python: str) -> Path:
    subprocess.run(
        [python, "-m", "django", "startproject", "mysite", str(directory)],
        check=True,
        timeout=TIMEOUT_S,
    )
    return directory / "manage.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Chained after the agent's bootstrap (a user's sitecustomize, as far as the agent can tell): times
# the agent's own code in the process (its import hook, its reports, its exit report) with the
# process's CPU clock, and appends the total to SELF_TIME_ENV's file at exit.
SELF_TIME_ENV = "AGENT_OVERHEAD_SELF_TIME_FILE"
SELF_TIME_SITECUSTOMIZE = """
import atexit, os, sys, time
_agent = getattr(sys.modules.get("_watchreload_agent"), "agent", None)
_spent = [0.0, 0]
def _timed(function):
    def timed(*args, **kwargs):
        _spent[1] += 1
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            _spent[1] -= 1
            if not _spent[1]:
                _spent[0] += time.process_time() - start
    return timed
if _agent is not None:
    _agent.flush = _timed(_agent.flush)
    _agent.finder.find_spec = _timed(_agent.finder.find_spec)
    _agent.on_gc = _timed(_agent.on_gc)
    def _report():
        _timed(_agent.at_exit)()
        with open(os.environ["AGENT_OVERHEAD_SELF_TIME_FILE"], "a") as f:
            f.write(f"{_spent[0]}\\n")
    atexit.register(_report)
"""

Timing = tuple[float, float]  # wall seconds, CPU seconds (user + system) of the process


def _reap(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Wait for the process; its exit status and CPU time, from wait4's rusage."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime


def time_check(python: str, manage: Path, env: dict[str, str]) -> Timing:
    start = time.perf_counter()
    process = subprocess.Popen(
        [python, str(manage), "check"], env=env, cwd=manage.parent, stdout=subprocess.DEVNULL
    )
    try:
        returncode, cpu = _reap(process)
    finally:
        if process.returncode is None:
            process.kill()
            process.wait(TIMEOUT_S)
    wall = time.perf_counter() - start
    if returncode != 0:
        raise RuntimeError(f"manage.py check exited with {returncode}")
    return wall, cpu


def time_runserver(python: str, manage: Path, env: dict[str, str]) -> Timing:
    """Spawn to the first accepted connection; the CPU time includes the kill that follows."""
    port = free_port()
    start = time.perf_counter()
    server = subprocess.Popen(
        [python, str(manage), "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        cwd=manage.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wall = None
    try:
        deadline = start + TIMEOUT_S
        while wall is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                wall = time.perf_counter() - start
                break
            if server.poll() is not None:
                raise RuntimeError(f"runserver exited with {server.returncode} before listening")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"runserver did not listen within {TIMEOUT_S} s")
            time.sleep(0.002)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        if server.returncode is None:
            _, cpu = _reap(server)
    return wall, cpu


@contextlib.contextmanager
def environments(
    python: str, manage: Path
) -> Iterator[tuple[AgentChannel, Callable[[], dict[str, str]], dict[str, str]]]:
    base = without_agent(os.environ)
    with AgentChannel() as channel:
        channel.start_reader()

        def with_agent() -> dict[str, str]:
            added = channel.start_run([python, str(manage)], base)
            if not added:
                raise RuntimeError(f"{python} is not detected as a Python interpreter")
            return {**base, **added}

        yield channel, with_agent, base


def measure(
    name: str,
    timer: Callable[[str, Path, dict[str, str]], Timing],
    python: str,
    manage: Path,
    runs: int,
) -> tuple[float, float]:
    """Print and return the with/without ratios of the median wall and CPU times."""
    with environments(python, manage) as (channel, with_agent, plain):
        for _ in range(2):  # warm-up: bytecode caches, the page cache
            timer(python, manage, plain)
            timer(python, manage, with_agent())
        times: dict[bool, list[Timing]] = {False: [], True: []}
        reported = 0
        for i in range(runs):
            for agent in (False, True) if i % 2 == 0 else (True, False):
                env = with_agent() if agent else plain
                times[agent].append(timer(python, manage, env))
                if agent:
                    reported = len(channel.imported_files())
        ratios = []
        for kind, index in (("wall", 0), ("CPU", 1)):
            without = statistics.median(t[index] for t in times[False])
            with_ = statistics.median(t[index] for t in times[True])
            # Each round's two runs side by side: slow drifts of a shared machine cancel out.
            paired = statistics.median(
                a[index] / b[index] for a, b in zip(times[True], times[False], strict=True)
            )
            ratios.append(with_ / without)
            print(
                f"{name:>9} {kind:>4}: without agent {without * 1000:7.1f} ms, "
                f"with {with_ * 1000:7.1f} ms, ratio {with_ / without:.3f} "
                f"(median of the rounds' ratios {paired:.3f})"
            )
        print(f"{name:>9}: medians of {runs} runs each; the last run reported {reported} files")
        if timer is time_check:  # runserver is killed, so it never reaches its exit report
            self_time(name, timer, python, manage, with_agent, runs)
        return ratios[0], ratios[1]


def self_time(
    name: str,
    timer: Callable[[str, Path, dict[str, str]], Timing],
    python: str,
    manage: Path,
    with_agent: Callable[[], dict[str, str]],
    runs: int,
) -> None:
    """The CPU time the agent's own code takes in the process, against the process's CPU time."""
    with tempfile.TemporaryDirectory(prefix="watchreload-agent-self-") as directory:
        (Path(directory) / "sitecustomize.py").write_text(SELF_TIME_SITECUSTOMIZE)
        record = Path(directory) / "self-time.txt"
        shares, spent = [], []
        for _ in range(runs):
            env = with_agent()
            env["PYTHONPATH"] += os.pathsep + directory
            env[SELF_TIME_ENV] = str(record)
            record.unlink(missing_ok=True)
            _, cpu = timer(python, manage, env)
            seconds = sum(float(line) for line in record.read_text().split())
            spent.append(seconds)
            shares.append(seconds / cpu)
    print(
        f"{name:>9} self: the agent's code takes {statistics.median(spent) * 1000:.1f} ms of CPU "
        f"per run, {statistics.median(shares) * 100:.2f} % of the process's CPU time (median)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.agent_overhead")
    parser.add_argument("--runs", type=int, default=21, help="runs of each variant (default 21)")
    parser.add_argument(
        "--mode", choices=["check", "runserver", "both"], default="both", help="default: both"
    )
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    args = parser.parse_args(argv)
    timers = {"check": time_check, "runserver": time_runserver}
    modes = list(timers) if args.mode == "both" else [args.mode]
    print(
        f"{args.python} ({sys.version.split()[0]}), {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="watchreload-agent-bench-") as directory:
        manage = make_project(Path(directory), args.python)
        ratios = [measure(mode, timers[mode], args.python, manage, args.runs) for mode in modes]
    worst_wall = max(wall for wall, _ in ratios)
    worst_cpu = max(cpu for _, cpu in ratios)
    verdict = "within" if worst_wall <= TARGET_RATIO else "OVER"
    print(
        f"worst ratio: wall {worst_wall:.3f} ({verdict} the {TARGET_RATIO:.2f} target), "
        f"CPU {worst_cpu:.3f}"
    )
    return 0 if worst_wall <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
