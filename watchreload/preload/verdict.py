"""Did a forked child crash where an exec'd one would not? Then exec once, and maybe stop forking.

`CrashJudge` is told how each child ended: its returncode (None when the supervisor stopped it
for a restart: it was working) and how far it got (`progress`: seconds alive, or the number of
modules the agent saw it import; the supervisor picks one and sticks to it). A forked child that
fails before getting as far as the exec'd one did makes the next restart exec, "to compare". If
that exec'd child gets further, forking is off for this module set (`disabled`); if it fails as
early, the program itself is broken and forking resumes.
"""

from __future__ import annotations

from watchreload.process import describe_status


class CrashJudge:
    def __init__(self) -> None:
        self.exec_progress: float | None = None  # how far the best exec'd child got
        self.crash: tuple[str, float] | None = None  # a forked child's failure awaiting a compare
        self.disabled: str | None = None

    def reason(self) -> str | None:
        """Why the next restart must exec (None: the template may serve it)."""
        if self.disabled is not None:
            return self.disabled
        if self.crash is not None:
            return f"the last forked child {self.crash[0]} early; running it by exec to compare"
        return None

    def forked_ended(self, returncode: int | None, progress: float) -> None:
        if returncode is None or returncode == 0:
            return
        if self.exec_progress is None or progress < self.exec_progress:
            self.crash = (describe_status(returncode), progress)

    def exec_ended(self, returncode: int | None, progress: float) -> None:
        worked = returncode is None or returncode == 0
        if worked or self.exec_progress is None or progress > self.exec_progress:
            self.exec_progress = max(progress, self.exec_progress or 0.0)
        if self.crash is None:
            return
        status, forked_progress = self.crash
        self.crash = None
        if worked or progress > forked_progress:
            self.disabled = (
                f"a forked child {status} where the exec'd one did not; "
                "preloading is off for this module set"
            )
