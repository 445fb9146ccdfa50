"""verdict.py: when a forked child's crash means exec, once or for good (pure)."""

from __future__ import annotations

import signal

from watchreload.preload.verdict import CrashJudge


def test_a_forked_crash_earlier_than_exec_means_exec_once_then_off_if_exec_works() -> None:
    judge = CrashJudge()
    judge.exec_ended(None, 5.0)  # the first run, by exec, worked until the restart
    judge.forked_ended(-signal.SIGSEGV, 0.2)
    reason = judge.reason()
    assert reason is not None and "SIGSEGV" in reason and "compare" in reason
    judge.exec_ended(None, 3.0)
    assert "preloading is off" in str(judge.reason())


def test_a_program_that_fails_either_way_keeps_forking() -> None:
    judge = CrashJudge()
    judge.exec_ended(None, 5.0)
    judge.forked_ended(1, 0.1)
    assert judge.reason() is not None
    judge.exec_ended(1, 0.1)  # the exec'd child fails as early: the program is broken
    assert judge.reason() is None


def test_failures_after_getting_as_far_as_exec_are_the_programs() -> None:
    judge = CrashJudge()
    judge.exec_ended(1, 2.0)
    judge.forked_ended(1, 2.5)
    judge.forked_ended(None, 0.1)  # stopped for a restart: it was working
    judge.forked_ended(0, 0.1)
    assert judge.reason() is None
