"""Running the real `python -m watchreload` over tests/programs/child.py; reading its records."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.support import PYTHON, Spawned, stays, wait_for

CHILD = Path(__file__).with_name("child.py")
POLL_INTERVAL = "0.1"  # stat backend: keep the suite fast


def interrupt_at_teardown(spawn: Callable[..., Spawned]) -> Iterator[Callable[..., Spawned]]:
    """Wrap the `spawn` fixture: whatever a test left running gets SIGINT (as a user would stop
    watchreload) before `spawn` checks for leaks, so a failed assertion is not also reported as a
    leak, while a grandchild that outlives watchreload still is."""
    started: list[Spawned] = []

    def _spawn(*args: object, **kwargs: object) -> Spawned:
        process = spawn(*args, **kwargs)
        started.append(process)
        return process

    yield _spawn
    for process in started:
        if process.popen.poll() is None:
            process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)


def clean_environ(**extra: str) -> dict[str, str]:
    """The test's environment without WATCHRELOAD_* settings from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHRELOAD_")}
    env.update(extra)
    return env


def alive(pid: int) -> bool:
    """True while `pid` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] not in ("Z", "X")


class Watchreload:
    """One `watchreload` process supervising child.py; `state` holds the child's records."""

    def __init__(
        self,
        spawn: Callable[..., Spawned],
        tree: Path,
        state: Path,
        *,
        backend: str = "stat",
        options: Sequence[str] = (),
        child_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        wait_started: bool = True,
        wrapper: Sequence[str] = (),
        scope: str = "tree",  # child.py is no module of the tree: "imports" would drop its edits
    ) -> None:
        self.tree = tree
        self.state = state
        state.mkdir(exist_ok=True)
        self.starts_file = state / "starts.jsonl"
        args = [
            *wrapper,
            PYTHON,
            "-m",
            "watchreload",
            "--backend",
            backend,
            "--poll-interval",
            POLL_INTERVAL,
            "--scope",
            scope,
            *options,
            "--",
            PYTHON,
            str(CHILD),
            "--starts",
            str(self.starts_file),
            *child_args,
        ]
        self.process = spawn(args, cwd=tree, env=clean_environ() if env is None else env)
        if wait_started:
            self.wait_starts(1)

    @property
    def output(self) -> str:
        return self.process.output

    def records(self) -> list[dict[str, Any]]:
        try:
            text = self.starts_file.read_text()
        except FileNotFoundError:
            return []
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines()]

    def count(self) -> int:
        return len(self.records())

    def wait_starts(self, n: int, timeout_s: float = 15) -> list[dict[str, Any]]:
        """Wait until the child has started `n` times (not more); return the records."""
        try:
            wait_for(
                lambda: self.count() >= n or self.process.popen.poll() is not None,
                timeout_s=timeout_s,
                message=f"start #{n} of the child",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- watchreload output:\n{self.output}") from None
        records = self.records()
        assert len(records) == n, f"expected {n} starts, got {len(records)}:\n{self.output}"
        return records

    def stays_at(self, n: int, duration_s: float = 0.6) -> None:
        """Assert the child was started exactly `n` times and that no restart follows."""
        assert stays(lambda: self.count() == n, duration_s), (
            f"expected exactly {n} starts, got {self.count()}:\n{self.output}"
        )

    def stop(self, signum: int = signal.SIGINT, timeout_s: float = 15) -> int:
        """Signal watchreload and return its exit status."""
        self.process.send_signal(signum)
        return self.process.wait(timeout_s)
