"""The supervisor: process lifetime only.

The first half feeds a Supervisor ChangeSets from a fake source (watchfiles `run_process` style);
the second half runs the real CLI (stat backend) to exercise signals, stop timeouts and process
groups through the real entry point.
"""

from __future__ import annotations

import json
import os
import pty
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.programs.harness import CHILD, Watchreload, alive, interrupt_at_teardown
from tests.support import PYTHON, Spawned, wait_for
from watchreload.changes import Change, ChangeSet
from watchreload.command import CHANGES_ENV, CHANGES_FILE_ENV, changes_environment, check_command
from watchreload.errors import CommandError, CommandNotExecutable, CommandNotFound, ReloaderFailed
from watchreload.process import exit_status
from watchreload.supervisor import Supervisor

Spawn = Callable[..., Spawned]


@pytest.fixture
def spawn(spawn: Spawn) -> Iterator[Spawn]:
    """The conftest `spawn`, plus a SIGINT at teardown to whatever a failed test left running."""
    yield from interrupt_at_teardown(spawn)


# -- pure helpers -----------------------------------------------------------------------------


def test_exit_status_follows_the_shell_convention() -> None:
    assert exit_status(0) == 0
    assert exit_status(7) == 7
    assert exit_status(-signal.SIGTERM) == 143
    assert exit_status(-signal.SIGKILL) == 137


def test_changes_environment_inline_when_small() -> None:
    env, overflow = changes_environment(ChangeSet({Path("/a.py"): Change.modified}))
    assert env == {CHANGES_ENV: '["/a.py"]'}
    assert overflow is None
    assert changes_environment(None) == ({}, None)  # the first start: nothing changed
    assert changes_environment(ChangeSet(reason="SIGHUP")) == ({CHANGES_ENV: "[]"}, None)


def test_changes_environment_is_bounded() -> None:
    paths = [Path(f"/src/{'d' * 150}/module_{i}.py") for i in range(5000)]
    env, overflow = changes_environment(ChangeSet(dict.fromkeys(paths, Change.added)), 64 * 1024)
    try:
        assert overflow is not None and env[CHANGES_FILE_ENV] == str(overflow)
        inline = json.loads(env[CHANGES_ENV])
        assert len(env[CHANGES_ENV].encode()) <= 64 * 1024
        assert 0 < len(inline) < 5000
        assert inline == [str(p) for p in paths[: len(inline)]]  # a prefix, in order
        assert json.loads(overflow.read_text()) == [str(p) for p in paths]
    finally:
        if overflow is not None:
            overflow.unlink()


def test_check_command() -> None:
    check_command([PYTHON, "-c", "pass"])
    check_command(["python3"])
    check_command(["no-such-command-xyz && true"], shell=True)  # the shell reports that
    with pytest.raises(CommandNotFound, match="not found on PATH") as not_found:
        check_command(["no-such-command-xyz"])
    assert not_found.value.exit_code == 127
    with pytest.raises(CommandNotFound, match="does not exist"):
        check_command(["./no/such/script"])
    with pytest.raises(CommandNotExecutable, match="not executable") as not_executable:
        check_command([str(CHILD)])  # a .py file without the executable bit
    assert not_executable.value.exit_code == 126
    with pytest.raises(CommandError, match="no command"):
        check_command([])


def test_messages_name_settings_not_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The CLI adds its flags to these; the library speaks of settings.
    monkeypatch.setenv("PATH", str(tmp_path))  # no sh on it
    with pytest.raises(CommandNotFound, match="the shell setting needs /bin/sh") as no_shell:
        check_command(["true"], shell=True)
    with pytest.raises(CommandError) as no_command:
        check_command([])
    for error in (no_shell.value, no_command.value):
        assert "--" not in str(error)


# -- a Supervisor fed by a fake source ------------------------------------------------------


class FakeSource:
    """Hands out ChangeSets put on a queue, like a reloader's wait_for_changes()."""

    def __init__(self) -> None:
        self.batches: queue.Queue[ChangeSet] = queue.Queue()
        self.error: BaseException | None = None
        self.should_stop = False

    def wait_for_changes(self, timeout_s: float | None = None) -> ChangeSet | None:
        try:
            return self.batches.get(timeout=timeout_s)
        except queue.Empty:
            return None


class Running:
    """A Supervisor running child.py in a thread; `result` is what run() returned or raised."""

    def __init__(self, supervisor: Supervisor, source: FakeSource, starts: Path) -> None:
        self.supervisor = supervisor
        self.source = source
        self.starts = starts
        self.result: int | BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test-supervisor")
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.supervisor.run(self.source)
        except BaseException as exc:
            self.result = exc

    def records(self) -> list[dict[str, object]]:
        if not self.starts.exists():
            return []
        text = self.starts.read_text()
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]

    def wait_starts(self, n: int) -> list[dict[str, object]]:
        wait_for(lambda: len(self.records()) >= n, message=f"start #{n}")
        records = self.records()
        assert len(records) == n
        return records

    def finish(self) -> int | BaseException | None:
        self.thread.join(15)
        assert not self.thread.is_alive()
        return self.result


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    runs: list[Running] = []

    def _start(*child_args: str, **options: object) -> Running:
        starts = tmp_path / "starts.jsonl"
        command = [PYTHON, str(CHILD), "--starts", str(starts), *child_args]
        supervisor = Supervisor(command, stop_timeout_s=5.0, **options)  # type: ignore[arg-type]
        run = Running(supervisor, FakeSource(), starts)
        runs.append(run)
        return run

    yield _start
    for run in runs:
        run.supervisor.request_stop()
        run.finish()
        for record in run.records():
            assert not alive(int(str(record["pid"]))), "a child outlived its supervisor"


def change(*names: str) -> ChangeSet:
    return ChangeSet({Path("/src", name): Change.modified for name in names})


def test_one_restart_per_changeset_never_two_children(supervised: Callable[..., Running]) -> None:
    run = supervised()
    run.wait_starts(1)
    for n in range(2, 5):
        run.source.batches.put(change(f"m{n}.py"))
        records = run.wait_starts(n)
        previous = int(str(records[-2]["pid"]))
        assert not alive(previous), "the old child was still running when the new one started"
        assert json.loads(str(records[-1]["changes"])) == [f"/src/m{n}.py"]
    run.supervisor.request_stop()
    assert run.finish() == 128 + signal.SIGTERM
    assert run.supervisor.starts == 4


def test_on_restart_runs_before_each_restart(supervised: Callable[..., Running]) -> None:
    calls: list[int] = []
    run: Running = supervised(on_restart=lambda: calls.append(len(run.records())))
    run.wait_starts(1)
    assert calls == []
    run.source.batches.put(change("a.py"))
    run.wait_starts(2)
    run.supervisor.request_restart()  # what SIGHUP does
    run.wait_starts(3)
    assert calls == [1, 2]  # once per restart, before the new child starts


def test_stop_returns_the_childs_own_status(supervised: Callable[..., Running]) -> None:
    run = supervised("--term-exit", "7")
    run.wait_starts(1)
    run.supervisor.request_stop()
    assert run.finish() == 7


def test_huge_change_list_still_execs(supervised: Callable[..., Running]) -> None:
    run = supervised()
    run.wait_starts(1)
    paths = [Path(f"/repo/{'x' * 200}/file_{i}.py") for i in range(5000)]  # about 1 MB of JSON
    run.source.batches.put(ChangeSet(dict.fromkeys(paths, Change.modified)))
    records = run.wait_starts(2)
    copy = run.starts.parent / f"starts.jsonl.{records[1]['pid']}.json"
    assert json.loads(copy.read_text()) == [str(p) for p in paths]
    inline = json.loads(str(records[1]["changes"]))
    assert 0 < len(inline) < 5000
    overflow = Path(str(records[1]["changes_file"]))
    run.source.batches.put(change("next.py"))
    run.wait_starts(3)
    assert not overflow.exists(), "the overflow file outlived the child it was written for"


def test_source_failure_stops_the_child(supervised: Callable[..., Running]) -> None:
    run = supervised()
    first = run.wait_starts(1)[0]
    run.source.error = OSError("inotify limit reached")
    result = run.finish()
    assert isinstance(result, ReloaderFailed)
    assert "inotify limit reached" in str(result)
    assert "the stat backend" in str(result) and "--" not in str(result)
    assert not alive(int(str(first["pid"])))


def test_source_that_stops_is_reported(supervised: Callable[..., Running]) -> None:
    run = supervised()
    run.wait_starts(1)
    run.source.should_stop = True
    result = run.finish()
    assert isinstance(result, ReloaderFailed)
    assert "verbose" in str(result) and "-v" not in str(result)


def test_command_not_found_at_first_start(tmp_path: Path) -> None:
    supervisor = Supervisor([str(tmp_path / "missing")])
    with pytest.raises(CommandNotFound):
        supervisor.run(FakeSource())


# -- the real CLI: signals, stop timeouts, process groups -----------------------------------


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def edit(tree: Path) -> None:
    with open(tree / "app.py", "a") as f:
        f.write("# edited\n")


@pytest.mark.parametrize(
    ("signum", "child_args", "expected"),
    [
        (signal.SIGINT, [], 128 + signal.SIGTERM),
        (signal.SIGTERM, [], 128 + signal.SIGTERM),
        (signal.SIGINT, ["--term-exit", "0"], 0),
        (signal.SIGTERM, ["--term-exit", "5"], 5),
    ],
)
def test_signal_stops_child_and_exits_with_its_status(
    spawn: Spawn, tree: Path, state: Path, signum: int, child_args: list[str], expected: int
) -> None:
    run = Watchreload(spawn, tree, state, child_args=child_args)
    child = int(run.records()[0]["pid"])
    assert run.stop(signum) == expected, run.output
    assert not alive(child)
    assert "Traceback" not in run.output


def test_child_ignoring_sigterm_is_killed_after_the_stop_timeout(
    spawn: Spawn, tree: Path, state: Path
) -> None:
    options = ["--stop-timeout", "0.3"]
    run = Watchreload(spawn, tree, state, options=options, child_args=["--ignore-sigterm"])
    edit(tree)
    records = run.wait_starts(2)
    assert not alive(int(records[0]["pid"]))
    assert "sending SIGKILL" in run.output
    assert run.stop() == 128 + signal.SIGKILL
    assert not alive(int(records[1]["pid"]))


def test_second_sigint_skips_the_grace_period(spawn: Spawn, tree: Path, state: Path) -> None:
    options = ["--stop-timeout", "60"]
    run = Watchreload(spawn, tree, state, options=options, child_args=["--ignore-sigterm"])
    run.process.send_signal(signal.SIGINT)
    wait_for(lambda: "SIGINT received; stopping" in run.output, message="the first SIGINT")
    run.process.send_signal(signal.SIGINT)
    assert run.process.wait(10) == 128 + signal.SIGKILL
    assert "asked to stop again; sending SIGKILL" in run.output


@pytest.mark.parametrize("grandchild_ignores_sigterm", [False, True])
def test_no_grandchild_survives_a_restart_or_a_stop(
    spawn: Spawn, tree: Path, state: Path, grandchild_ignores_sigterm: bool
) -> None:
    child_args = ["--grandchild", str(state / "grandchildren")]
    if grandchild_ignores_sigterm:
        child_args.append("--grandchild-ignores-sigterm")
    run = Watchreload(spawn, tree, state, options=["--stop-timeout", "0.3"], child_args=child_args)
    first = run.records()[0]
    assert alive(first["grandchild"]) and first["pgid"] == first["pid"]
    edit(tree)
    second = run.wait_starts(2)[1]
    assert not alive(first["grandchild"]), "a grandchild survived the restart"
    assert alive(second["grandchild"])
    run.stop()
    assert not alive(second["grandchild"]), "a grandchild survived watchreload"
    assert not run.process.session_members()


def test_sighup_forces_a_restart(spawn: Spawn, tree: Path, state: Path) -> None:
    run = Watchreload(spawn, tree, state)
    run.process.send_signal(signal.SIGHUP)
    records = run.wait_starts(2)
    assert json.loads(records[1]["changes"]) == []
    assert "SIGHUP" in run.output
    run.stays_at(2, duration_s=0.3)
    assert run.stop() == 128 + signal.SIGTERM


def test_crash_waits_for_a_change(spawn: Spawn, tree: Path, state: Path) -> None:
    state.mkdir()
    crash = state / "crash"
    crash.touch()
    run = Watchreload(spawn, tree, state, child_args=["--crash-when", str(crash)])
    wait_for(lambda: "exited with status 3; waiting for a change" in run.output)
    run.stays_at(1, duration_s=0.5)  # no restart loop
    crash.unlink()
    edit(tree)
    second = run.wait_starts(2)[1]
    assert alive(second["pid"])
    assert run.stop() == 128 + signal.SIGTERM


def test_stopped_while_waiting_exits_with_the_crash_status(
    spawn: Spawn, tree: Path, state: Path
) -> None:
    state.mkdir()
    (state / "crash").touch()
    run = Watchreload(spawn, tree, state, child_args=["--crash-when", str(state / "crash")])
    wait_for(lambda: "exited with status 3" in run.output)
    assert run.stop() == 3


def test_clean_exit_also_waits_for_a_change(spawn: Spawn, tree: Path, state: Path) -> None:
    # --scope tree: `python -c` imports nothing of the tree, so with imports no edit would count.
    args = [PYTHON, "-m", "watchreload", "--backend", "stat", "--poll-interval", "0.1"]
    args += ["--scope", "tree", "--"]
    marker = state / "ran"
    state.mkdir()
    code = f"open({str(marker)!r}, 'a').write('x')"
    process = spawn([*args, PYTHON, "-c", code], cwd=tree)
    wait_for(lambda: "exited with status 0; waiting for a change" in process.output)
    edit(tree)
    wait_for(lambda: marker.exists() and marker.read_text() == "xx", message="the second run")
    # Stopped only once the second run has exited too: stopping a child still on its way out
    # would end it with the stop signal (143), which is not what this test is about.
    waiting = "exited with status 0; waiting for a change"
    wait_for(lambda: process.output.count(waiting) == 2, message="the second run to exit")
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0


def test_what_a_crashed_child_left_behind_is_stopped_with_watchreload(
    spawn: Spawn, tree: Path, state: Path
) -> None:
    state.mkdir()
    (state / "crash").touch()
    child_args = ["--grandchild", str(state / "gc"), "--crash-when", str(state / "crash")]
    run = Watchreload(spawn, tree, state, child_args=child_args)
    wait_for(lambda: "exited with status 3" in run.output)
    orphan = run.records()[0]["grandchild"]
    assert alive(orphan)  # the child crashed; its grandchild runs on until the next restart
    assert run.stop() == 3
    assert not alive(orphan)


def test_a_child_that_reads_the_terminal_is_explained_not_left_hanging(
    spawn: Spawn, tree: Path, state: Path
) -> None:
    controller, terminal = pty.openpty()
    try:
        # A session leader that opens a terminal gets it as its controlling terminal, as a shell's
        # job does; then watchreload's process group is the terminal's foreground group.
        become_terminal_job = (
            "import os, sys; fd = os.open(sys.argv[1], os.O_RDWR); os.dup2(fd, 0); "
            "os.execv(sys.argv[2], sys.argv[2:])"
        )
        wrapper = [PYTHON, "-c", become_terminal_job, os.ttyname(terminal)]
        run = Watchreload(
            spawn,
            tree,
            state,
            options=["--tty", "never"],  # the terminal is not lent (tests/test_tty_cli.py)
            child_args=["--read-stdin"],
            wrapper=wrapper,
        )
        wait_for(lambda: "is stopped by SIGTTIN: it used the terminal" in run.output)
        assert run.output.count("is stopped by SIGTTIN") == 1
        assert run.stop() == 128 + signal.SIGTERM  # the stop signal reaches a stopped child
    finally:
        os.close(terminal)
        os.close(controller)
