"""verdict.py: when a forked crash means an exec to compare, and when forking stops (pure)."""

from __future__ import annotations

import signal

from watchreload.preload.verdict import CrashJudge


def test_a_forked_crash_earlier_than_exec_is_compared_and_forking_stops_if_exec_works() -> None:
    judge = CrashJudge()
    judge.exec_ended(None, 500)  # the first run, by exec, worked until the restart
    again = judge.forked_ended(1, 200)
    assert again is not None and "exited with status 1" in again
    assert "compare" in str(judge.reason())
    judge.exec_running(150)  # not as far yet
    assert judge.disabled is None
    judge.exec_running(200)  # as far as the forked child got, and still running
    assert "preloading is off" in str(judge.reason())


def test_a_fatal_signal_is_compared_even_after_getting_as_far() -> None:
    judge = CrashJudge()
    judge.exec_ended(None, 500)
    assert judge.forked_ended(-signal.SIGSEGV, 900) is not None
    judge.exec_ended(None, 700)  # stopped for a restart while working
    assert "SIGSEGV" in str(judge.reason()) and "preloading is off" in str(judge.reason())


def test_a_program_that_fails_either_way_keeps_forking() -> None:
    judge = CrashJudge()
    judge.exec_ended(None, 500)
    assert judge.forked_ended(1, 100) is not None
    judge.exec_ended(1, 100)  # the exec'd child fails as early: the program is broken
    assert judge.reason() is None


def test_failures_after_getting_as_far_as_exec_are_the_programs() -> None:
    judge = CrashJudge()
    judge.exec_ended(1, 200)
    assert judge.forked_ended(1, 250) is None
    assert judge.forked_ended(None, 10) is None  # stopped for a restart: it was working
    assert judge.forked_ended(0, 10) is None
    assert judge.reason() is None


def test_a_forked_child_killed_by_someone_else_did_not_crash() -> None:
    judge = CrashJudge()
    judge.exec_ended(None, 500)
    assert judge.forked_ended(-signal.SIGTERM, 10) is None
    assert judge.forked_ended(-signal.SIGKILL, 10) is None
    assert judge.reason() is None
