"""`--preload` in command mode: the supervisor's launcher that forks each restart from a template.

The first child runs by exec. Once its imports have been quiet for BUILD_AFTER_QUIET_S, it is
asked for the agent's report (agent/request.py: an idle program would send nothing more before
it exits), and once they are quiet again a template is built from them in the background; later
restarts fork from it.
Every start that the template cannot serve runs by exec, and `path()` says why for the restart
line. A stale template (checked every STALE_CHECK_S and before each fork) is replaced, no sooner
than REBUILD_AFTER_S after the change that made it stale (a `pip install` changes many files);
the old one is stopped at once, or once the child forked from it ends (stopping a template kills
its children). An unsafe template is built again without the modules it names
(client.Template.without_culprits); a forked child that crashes is compared with an exec'd run
(verdict.py); a template that dies takes its child with it, which is started again by exec at
once. The template lives in this thread (its parent-death signal follows the thread that started
it): build it from the supervisor's loop only.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from watchreload.agent.channel import AgentChannel
from watchreload.agent.request import ask_for_report
from watchreload.launcher import Child, ExecLauncher
from watchreload.preload.client import ForkedChild, Template, TemplateUnavailable
from watchreload.preload.reasons import platform_reason
from watchreload.preload.verdict import CrashJudge

logger = logging.getLogger(__name__)

BUILD_AFTER_QUIET_S = 0.5  # the child's imports quiet this long: build the template from them
STALE_CHECK_S = 1.0  # how often an idle template is checked for staleness
REBUILD_AFTER_S = 2.0  # after a template went stale, wait this long before building the next
REFRESH_AFTER_UNSEEN = 20  # installed modules a run imported that the template lacks: rebuild
MAX_DEATHS = 3  # templates that died, in a row without a fork served in between: stop trying
FORKED = "forked from the preloaded template"


class Preloader:
    """A Launcher (launcher.py) for one Python command over the run."""

    def __init__(
        self, channel: AgentChannel, roots: Sequence[Path], *, shell: bool = False
    ) -> None:
        self.channel = channel
        self.roots = [str(root) for root in roots]
        self.cwd = os.getcwd()
        self.execs = ExecLauncher()
        self.template: Template | None = None
        self._next: Template | None = None  # a fuller template, taking over once ready
        self._retired: list[Template] = []  # stale, kept until the child forked from it ends
        self.judge = CrashJudge()
        self.unavailable = "the command runs through a shell" if shell else platform_reason()
        self._command: list[str] = []
        self._env: dict[str, str] = {}
        self._planned: tuple[str | None] | None = None  # path()'s answer, used by the next start
        self._forked: set[int] = set()
        self._current: Child | None = None
        self._current_forked = False
        self._asked = False  # the current child was asked for its report
        self._started_at = 0.0
        self._imports_seen = 0
        self._quiet_since = time.monotonic()
        self._next_stale_check = 0.0
        self._deaths = 0
        self._build_after = 0.0  # time.monotonic() before which no template is built
        self._said_unsafe = False
        self._announced: Template | None = None  # the last template said to be ready

    # -- the Launcher interface ---------------------------------------------------------------

    def path(self, command: Sequence[str], env: Mapping[str, str]) -> str | None:
        reason = self._why_exec(command, env)
        self._planned = (reason,)
        return FORKED if reason is None else f"by exec: {reason}"

    def start(self, command: Sequence[str], env: Mapping[str, str], *, shell: bool) -> Child:
        self._command, self._env = list(command), dict(env)
        planned, self._planned = self._planned, None
        reason = planned[0] if planned is not None else self._why_exec(command, env)
        reason = reason or self.judge.reason()  # a crash seen while the old child was stopped
        child: Child | None = None
        if reason is None and self.template is not None:
            try:
                child = self.template.fork(command, env, self.cwd, guard=True)
                self._deaths = 0
            except TemplateUnavailable as exc:
                logger.info("preload: %s; starting by exec", exc)
        self._current_forked = child is not None
        if child is None:
            child = self.execs.start(command, env, shell=shell)
        else:
            self._forked.add(child.pid)
        self._current, self._asked, self._started_at = child, False, time.monotonic()
        self._imports_seen, self._quiet_since = 0, time.monotonic()
        return child

    def ended(self, child: Child, returncode: int | None) -> str | None:
        for template in self._retired:
            template.close()
        self._retired.clear()
        ran_s = time.monotonic() - self._started_at
        files = self.channel.imported_files()
        if self.template is None and files and self._buildable():
            self._build(files)  # from what this run imported, quiet or not
        elif self.template is not None and self.template.state == "ready":
            self._refresh(self.template, files)
        if child.pid not in self._forked:
            self.judge.exec_ended(returncode, ran_s)
            self._obey_judge()
            return None
        self._forked.discard(child.pid)
        if isinstance(child, ForkedChild) and child.template.state == "gone" and returncode:
            return "the preloaded template died, and its child with it"
        return self.judge.forked_ended(returncode, ran_s)

    def poll(self) -> None:
        if self.unavailable is not None or self.judge.disabled is not None:
            return
        if self.judge.comparing is not None and not self._current_forked:
            self.judge.exec_running(time.monotonic() - self._started_at)
            self._obey_judge()
        if self._next is not None:
            self._take_over(self._next)
        files = self._imports_quiet()  # and asks the child for its report, once
        template = self.template
        if template is None:
            if files and time.monotonic() >= self._build_after:
                self._build(files)
            return
        template.pump(0)
        if template.state == "ready" and template is not self._announced:
            self._announced = template
            _say_ready(template)
        if template.state == "unsafe":
            self._rebuild_without_culprits(template)
        elif template.state == "gone":
            self._lost(template)
        elif template.state == "ready":
            self._check_stale(template)

    def close(self) -> None:
        for template in [*self._retired, self.template, self._next]:
            if template is not None:
                template.close()
        self._retired.clear()
        self.template = self._next = None

    # -- decisions -----------------------------------------------------------------------------

    def _why_exec(self, command: Sequence[str], env: Mapping[str, str]) -> str | None:
        if self.unavailable is not None:
            return self.unavailable
        judged = self.judge.reason()
        if judged is not None:
            return judged
        template = self.template
        if template is None:
            return "no template yet (it is built from what the program imports)"
        reason = template.why_not(command, env, self.cwd)
        if reason is not None and template.state == "ready" and template.fingerprint.changed():
            self._discard(template, reason)
        return reason

    def _obey_judge(self) -> None:
        if self.judge.disabled is not None and self.template is not None:
            logger.warning("preload: %s; restarts use exec", self.judge.disabled)
            self.close()

    # -- the template's life -------------------------------------------------------------------

    def _imports_quiet(self) -> set[Path] | None:
        """The current child's imports once they have been quiet for BUILD_AFTER_QUIET_S after
        asking it for its report (else None): what a template is built from."""
        child = self._current
        if child is None:
            return None
        files = self.channel.imported_files()
        now = time.monotonic()
        if len(files) != self._imports_seen:
            self._imports_seen, self._quiet_since = len(files), now
            return None
        if now - self._quiet_since < BUILD_AFTER_QUIET_S:
            return None
        if not self._asked:
            self._asked = True
            if child.poll() is None and ask_for_report(child.pid):
                self._quiet_since = now  # and wait for quiet again
                return None
        return files

    def _buildable(self) -> bool:
        ready = time.monotonic() >= self._build_after
        return (
            ready and bool(self._command) and self.unavailable is None and not self.judge.disabled
        )

    def _build(self, files: set[Path]) -> None:
        self.template = self._start_template({str(f) for f in files})

    def _start_template(self, files: set[str]) -> Template | None:
        try:
            template = Template.for_command(
                self._command,
                self._env,
                self.cwd,
                [],
                preload_files=sorted(files),
                volatile_roots=self.roots,
            )
        except (TemplateUnavailable, OSError) as exc:
            self.unavailable = str(exc)
            logger.warning("preload: %s; restarts use exec", exc)
            return None
        logger.debug("preload: building template %d from %d files", template.pid, len(files))
        return template

    def _rebuild_without_culprits(self, template: Template) -> None:
        if template.state != "unsafe" or self._said_unsafe:
            return
        rebuilt = template.without_culprits()
        if rebuilt is not None:
            self.template = rebuilt
            logger.warning("preload: %s; building it again without them", template.reason)
        else:
            self._said_unsafe = True
            logger.warning("preload: %s; restarts use exec", template.reason)

    def _lost(self, template: Template) -> None:
        """The template died (not stopped by us): build another, unless they keep dying."""
        self._deaths += 1
        template.close()
        self.template = None
        if self._deaths >= MAX_DEATHS:
            self.unavailable = f"{MAX_DEATHS} templates died in a row"
            logger.warning("preload: %s; %s; restarts use exec", template.reason, self.unavailable)
        else:
            logger.warning("preload: %s; building another", template.reason)

    def _refresh(self, template: Template, files: set[Path]) -> None:
        """A run imported many installed modules the template lacks (at its first request,
        say): build one with them too, which takes over once it is ready."""
        unseen = template.unseen(files)
        if self._next is not None or len(unseen) < REFRESH_AFTER_UNSEEN:
            return
        logger.info("preload: the program imported %d more modules; adding them", len(unseen))
        self._next = self._start_template({*template.key["preload_files"], *map(str, files)})

    def _take_over(self, successor: Template) -> None:
        """The successor built by _refresh is ready (or failed): it replaces the template."""
        successor.pump(0)
        if successor.state == "building":
            return
        self._next = None
        if successor.state != "ready":
            logger.debug("preload: the fuller template failed (%s)", successor.reason)
            successor.close()
            return
        old, self.template = self.template, successor
        if old is not None:
            self._stop_when_free(old)

    def _check_stale(self, template: Template) -> None:
        now = time.monotonic()
        if now < self._next_stale_check:
            return
        self._next_stale_check = now + STALE_CHECK_S
        reason = template.fingerprint.changed()
        if reason is not None:
            self._discard(template, reason)

    def _stop_when_free(self, template: Template) -> None:
        """Stop `template` now, or once the running child forked from it ends."""
        child = self._current
        if isinstance(child, ForkedChild) and child.template is template and child.running():
            self._retired.append(template)
        else:
            template.close()

    def _discard(self, template: Template, reason: str) -> None:
        """Build a new template soon; stop this one now, or once its running child ends."""
        logger.info("preload: the template is stale (%s); building a new one", reason)
        if self._next is not None:  # started before the change: no better
            self._next.close()
            self._next = None
        self._stop_when_free(template)
        self.template = None
        self._build_after = time.monotonic() + REBUILD_AFTER_S
        self._imports_seen, self._quiet_since = 0, time.monotonic()


def _say_ready(template: Template) -> None:
    report = template.report
    logger.info(
        "preload: template ready (%d files preloaded in %.0f ms)",
        len(report.get("files", ())),
        float(report.get("seconds", 0.0)) * 1000,
    )
