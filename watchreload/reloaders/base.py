"""BaseReloader: the contract every backend implements, with Django's names and meaning."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

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

    # -- what is watched -------------------------------------------------------------------

    def watch_dir(self, path: str | os.PathLike[str], glob: str) -> None:
        """Watch files under `path` whose path relative to it matches `glob` (wildmatch)."""
        directory = Path(path).absolute()
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

    def notify_file_changed(
        self, path: str | os.PathLike[str], change: Change = Change.modified
    ) -> None:
        """Offer the change to the `file_changed` hooks; if none handles it, queue a reload."""
        self.notify_files_changed([(Path(path), change)])

    def notify_files_changed(self, changes: Iterable[FileChange]) -> None:
        """notify_file_changed() for a burst the backend knows is whole (one scan, one Watchman
        result): each path goes through the hooks, and what is left joins a batch in one step."""
        if self.gitignore_rules is not None:
            changes = self._without_git_ignored(changes, self.gitignore_rules)
        unhandled = []
        for path, change in changes:
            results = file_changed.send(sender=self, file_path=path)
            if any(result for _, result in results):
                logger.debug("%s changed and was handled by a file_changed hook", path)
            else:
                unhandled.append((path, change))
        if unhandled:
            logger.debug("changed: %s", ", ".join(f"{p} {c.name}" for p, c in unhandled[:20]))
            self.batcher.add_many(unhandled)

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


def _copy_while_others_add(items: set[Path]) -> list[Path]:
    """Copy a set that user code may change from another thread (`extra_files.add()`)."""
    while True:
        try:
            return list(items)
        except RuntimeError:  # "Set changed size during iteration": try again
            continue
