"""BaseReloader: the contract every backend implements, with Django's names and meaning."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from watchreload.changes import (
    DEFAULT_DEBOUNCE_MAX_MS,
    DEFAULT_DEBOUNCE_MS,
    Change,
    ChangeBatcher,
    ChangeSet,
    FileChange,
)
from watchreload.gitignore import GitIgnoreRules
from watchreload.hooks import autoreload_started, file_changed
from watchreload.spec import DEFAULT_IGNORE_PATTERNS, IgnoreMatcher, WatchSpec, compile_glob

logger = logging.getLogger(__name__)


class BaseReloader:
    """Finds changed files and reports each through `notify_file_changed()`.

    A backend implements `tick()` (a generator doing one bounded step per `yield`) and
    `check_availability()`. Changes nobody's `file_changed` hook handled are gathered into debounced
    ChangeSets, read with `wait_for_changes()`; in library mode each ChangeSet ends the process
    with exit code 3, in command mode the supervisor restarts its child.

    With `gitignore` (the default), paths that the project's git ignore rules ignore are dropped
    here, the one place every backend's changes pass, unless they are extra files (imported
    modules, `extra_files`): a file watched by name wins. A change to an ignore file itself
    refreshes the rules and is not reported.
    """

    name = "base"
    reason = ""  # why get_reloader() chose this backend

    def __init__(
        self,
        *,
        ignore_patterns: Iterable[str] = DEFAULT_IGNORE_PATTERNS,
        watch_modules: bool = True,
        debounce_ms: float = DEFAULT_DEBOUNCE_MS,
        debounce_max_ms: float = DEFAULT_DEBOUNCE_MAX_MS,
        gitignore: bool = True,
    ) -> None:
        self.extra_files: set[Path] = set()
        self.directory_globs: defaultdict[Path, set[str]] = defaultdict(set)
        self.ignore = IgnoreMatcher(tuple(ignore_patterns))
        self.watch_modules = watch_modules
        self.gitignore_rules = GitIgnoreRules() if gitignore else None
        self.batcher = ChangeBatcher(debounce_ms, debounce_max_ms)
        self.error: BaseException | None = None
        self._stop_condition = threading.Event()
        self._thread: threading.Thread | None = None
        # Set by the backend once it is watching (stat: the baseline scan is done), so that a
        # consumer can start its program knowing no edit from then on is missed.
        self.ready = threading.Event()
        # watch_dir() may be called from another thread while the backend reads spec().
        self._watch_lock = threading.Lock()
        # The burst notify_files_changed() is offering, per thread (see there).
        self._burst = threading.local()

    # -- what is watched -------------------------------------------------------------------

    def watch_dir(self, path: str | os.PathLike[str], glob: str) -> None:
        """Watch files under `path` whose path relative to it matches `glob` (wildmatch).

        As Django's, a relative `path` that cannot be made absolute (the current directory was
        deleted) is skipped, with a DEBUG line."""
        try:
            directory = Path(path).absolute()
        except FileNotFoundError:
            logger.debug("Unable to watch directory %s as it cannot be resolved.", path)
            return
        compile_glob(glob)  # an invalid glob fails here, with a clear error
        logger.debug("watching dir %s with glob %s", directory, glob)
        with self._watch_lock:
            self.directory_globs[directory].add(glob)

    def watch_file(self, path: str | os.PathLike[str]) -> None:
        with self._watch_lock:
            self.extra_files.add(Path(path).absolute())

    def spec(self) -> WatchSpec:
        """A snapshot of everything watched now, as the one description backends share."""
        with self._watch_lock:
            roots = {d: frozenset(g) for d, g in self.directory_globs.items()}
            extra = set(_copy_while_others_add(self.extra_files))
        if self.watch_modules:
            from watchreload.modules import iter_all_python_module_files

            extra.update(iter_all_python_module_files())
        if self.gitignore_rules is not None:
            for root in roots:
                self.gitignore_rules.watch_root(root)
        return WatchSpec(
            roots=roots,
            extra_files=frozenset(extra),
            ignore=self.ignore,
            gitignore=self.gitignore_rules,
        )

    def watched_files(self, include_globs: bool = True) -> Iterator[Path]:
        """Yield every file watched now: imported modules, extra files and, optionally, globbed."""
        from watchreload.scan import scan_files

        spec = self.spec()
        yield from spec.extra_files
        if include_globs:
            for root, globs in spec.roots.items():
                rules = spec.gitignore
                for path in map(Path, scan_files(root, globs, spec.ignore, gitignore=rules)):
                    if rules is None or rules.is_ignore_file(path) or not rules.ignores(path):
                        yield path

    # -- running -----------------------------------------------------------------------------

    @classmethod
    def check_availability(cls) -> None:
        """Raise WatchmanUnavailable (or another WatchreloadError) when this backend can't run."""
        raise NotImplementedError("subclasses must implement check_availability()")

    def tick(self) -> Iterator[None]:
        raise NotImplementedError("subclasses must implement tick()")

    def run_loop(self) -> None:
        ticker = self.tick()
        while not self.should_stop:
            try:
                next(ticker)
            except StopIteration:
                break
        self.stop()

    def start(self) -> None:
        """Run the backend in a daemon thread; read results with `wait_for_changes()`."""
        autoreload_started.send(sender=self)
        self._thread = threading.Thread(
            target=self._run_guarded, name=f"watchreload-{self.name}", daemon=True
        )
        self._thread.start()

    def _run_guarded(self) -> None:
        try:
            self.run_loop()
        except BaseException as exc:  # handed to the consumer, which reports it
            self.error = exc
            logger.debug("%s reloader failed", self.name, exc_info=True)
        finally:
            self.batcher.close()

    def wait_until_ready(self, timeout_s: float) -> bool:
        """Wait until the backend sees every edit from now on; False if it failed or timed out."""
        deadline = time.monotonic() + timeout_s
        while not self.ready.wait(0.05):
            if self.error is not None or self.should_stop or time.monotonic() >= deadline:
                return False
        return True

    def join(self, timeout_s: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    # -- changes -----------------------------------------------------------------------------

    def notify_file_changed(self, path: str | os.PathLike[str]) -> None:
        """Offer the change to the `file_changed` hooks; if none handles it, queue a reload.

        The one funnel, as in Django: every backend reports every changed path through here, so
        a subclass (or a test) that replaces it sees each of them. A burst arrives through
        `notify_files_changed()`, which offers its paths here one by one and hands what is left
        to the batcher in one step, so that the burst is still one batch."""
        if not isinstance(path, Path):  # a Path is kept: the burst knows it by identity
            path = Path(path)
        results = file_changed.send(sender=self, file_path=path)
        if any(result for _, result in results):
            logger.debug("%s changed and was handled by a file_changed hook", path)
            return
        burst = self._burst
        offered: FileChange | None = getattr(burst, "offered", None)
        change = Change.modified
        if offered is not None and (offered[0] is path or offered[0] == path):
            change = offered[1]
        left: list[FileChange] | None = getattr(burst, "left", None)
        if left is None:  # called by hand, not for a burst
            self.batcher.add(path, change)
        else:
            left.append((path, change))

    def notify_files_changed(self, changes: Iterable[FileChange]) -> None:
        """notify_file_changed() for a burst the backend knows is whole (one scan, one Watchman
        result): each path goes through it, and what is left joins a batch in one step."""
        if self.gitignore_rules is not None:
            changes = self._without_git_ignored(changes, self.gitignore_rules)
        changes = list(changes)
        if not changes:
            return
        logger.debug("changed: %s", ", ".join(f"{p} {c.name}" for p, c in changes[:20]))
        burst = self._burst  # per thread: what is being offered, and what no hook handled
        outer = getattr(burst, "left", None), getattr(burst, "offered", None)
        left: list[FileChange] = []
        burst.left = left
        try:
            for change in changes:
                burst.offered = change
                self.notify_file_changed(change[0])
        finally:
            burst.left, burst.offered = outer
        if left:
            self.batcher.add_many(left)

    def _without_git_ignored(
        self, changes: Iterable[FileChange], rules: GitIgnoreRules
    ) -> list[FileChange]:
        """The changes git does not ignore. Ignore files are taken out first and refresh the
        rules, so that the rest of the burst is judged by the rules it was written with."""
        changes = list(changes)
        ignore_files = [path for path, _ in changes if rules.is_ignore_file(path)]
        if ignore_files:
            logger.debug("ignore files changed: %s", ", ".join(map(str, ignore_files)))
            rules.refresh(ignore_files)
            self.ignore_files_changed()
            changes = [(p, c) for p, c in changes if not rules.is_ignore_file(p)]
        explicit: frozenset[Path] | None = None  # read only if a rule ignores something
        kept: list[FileChange] = []
        for path, change in changes:
            if rules.ignores(path):
                if explicit is None:
                    explicit = self.spec().extra_files
                if path not in explicit:
                    logger.debug("%s %s is ignored by git's rules", path, change.name)
                    continue
            kept.append((path, change))
        return kept

    def ignore_files_changed(self) -> None:
        """Called after an ignore file changed and the rules were refreshed (a hook for backends
        whose filters depend on the rules)."""

    def wait_for_changes(self, timeout_s: float | None = None) -> ChangeSet | None:
        """The next debounced ChangeSet, or None on timeout or once the reloader has stopped."""
        return self.batcher.wait(timeout_s)

    @property
    def should_stop(self) -> bool:
        return self._stop_condition.is_set()

    def stop(self) -> None:
        self._stop_condition.set()
        self.batcher.close()

    # -- Django's foreground API (start_django() calls run()) ------------------------------------

    def wait_for_apps_ready(self, app_reg: Any, django_main_thread: threading.Thread) -> bool:
        """Wait until Django's app registry `app_reg` is ready: True once it is, False if
        `django_main_thread` ended first (it failed to start, say with a syntax error)."""
        while django_main_thread.is_alive():
            if app_reg.ready_event.wait(timeout=0.1):
                return True
        logger.debug("Main Django thread has terminated before apps are ready.")
        return False

    def run(self, django_main_thread: threading.Thread) -> None:
        """Watch in this thread until a debounced batch of changes ends the process with
        `trigger_reload()` (exit code 3), or `stop()`.

        When Django is set up in this process, first wait for its app registry, as Django's
        reloader does. Then start the backend (which sends `autoreload_started`) and wait until
        it sees every edit, unless `start_django()` started it before the program."""
        from watchreload.process import WATCHER_JOIN_TIMEOUT_S, watching

        apps = _django_apps()
        if apps is not None:
            self.wait_for_apps_ready(apps, django_main_thread)
        if self._thread is None:
            with watching(self, "the program"):
                self._reload_on_changes()
            return
        try:
            self._reload_on_changes()
        finally:
            self.stop()
            self.join(WATCHER_JOIN_TIMEOUT_S)

    def _reload_on_changes(self) -> None:
        from watchreload import autoreload  # it imports this module: import it when used
        from watchreload.errors import ReloaderFailed

        while not self.should_stop:
            changes = self.wait_for_changes(timeout_s=1.0)
            if changes is not None:
                autoreload.trigger_reload(changes.describe())
            if self.error is not None:
                raise ReloaderFailed(
                    f"the {self.name} reloader failed: {self.error}"
                ) from self.error


def _django_apps() -> Any:
    """Django's app registry when Django is imported and configured here, else None."""
    apps_module, conf = sys.modules.get("django.apps"), sys.modules.get("django.conf")
    if apps_module is None or conf is None or not conf.settings.configured:
        return None
    return apps_module.apps


def apps_pending() -> bool:
    """True when Django is configured here but its app registry is not ready yet."""
    apps = _django_apps()
    return apps is not None and not apps.ready


def _copy_while_others_add(items: set[Path]) -> list[Path]:
    """Copy a set that user code may change from another thread (`extra_files.add()`)."""
    while True:
        try:
            return list(items)
        except RuntimeError:  # "Set changed size during iteration": try again
            continue
