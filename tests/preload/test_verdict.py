"""verdict.py: when a forked crash means an exec to compare, and when forking stops (pure)."""

from __future__ import annotations

import signal

from watchreload.preload.verdict import MIN_COMPARE_S, CrashJudge

SEGV = -int(signal.SIGSEGV)


def test_a_forked_crash_is_compared_and_forking_stops_when_exec_runs_longer() -> None:
    judge = CrashJudge()
    again = judge.forked_ended(SEGV, 0.3)
    assert again is not None and "SIGSEGV" in again
    assert "compare" in str(judge.reason())
    judge.exec_running(0.5)  # not long enough yet
    assert judge.disabled is None
    judge.exec_running(MIN_COMPARE_S + 0.1)
    assert "preloading is off" in str(judge.reason())
    assert judge.forked_ended(SEGV, 0.3) is None  # off: no more compares


def test_an_execd_child_that_exits_without_crashing_shows_the_fork_was_at_fault() -> None:
    judge = CrashJudge()
    judge.forked_ended(-int(signal.SIGABRT), 2.0)
    judge.exec_ended(1, 0.2)  # a Python error by exec, not the fork's crash
    assert "SIGABRT" in str(judge.reason()) and "preloading is off" in str(judge.reason())


def test_a_program_that_crashes_either_way_keeps_forking() -> None:
    judge = CrashJudge()
    judge.forked_ended(SEGV, 0.3)
    judge.exec_ended(SEGV, 0.9)
    assert judge.reason() is None


def test_a_compare_stopped_for_a_restart_too_soon_tells_nothing() -> None:
    judge = CrashJudge()
    judge.forked_ended(SEGV, 2.5)
    judge.exec_ended(None, 1.0)  # an edit came before it had run as long as the forked one
    assert judge.reason() is None and judge.disabled is None
    judge.forked_ended(SEGV, 2.5)
    judge.exec_ended(None, 3.0)  # stopped after running longer: it worked
    assert judge.disabled is not None


def test_exits_and_other_signals_are_not_crashes() -> None:
    judge = CrashJudge()
    for returncode in (None, 0, 1, 2, -int(signal.SIGTERM), -int(signal.SIGKILL)):
        assert judge.forked_ended(returncode, 0.1) is None
    assert judge.reason() is None
