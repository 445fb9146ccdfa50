"""WatchreloadReloader: a watchreload backend behind Django's BaseReloader contract.

Django's runserver child runs `run_with_reloader()` → `get_reloader()` → `start_django(reloader,
inner_run)` → `reloader.run(django_main_thread)`, which waits for the app registry, imports the
URLconf, sends Django's `autoreload_started` (receivers call `sender.watch_dir()`: template
directories, `locale/**/*.mo`, third-party apps), then `run_loop()` → `tick()`.

`install()` replaces only `django.utils.autoreload.get_reloader`, with a function that returns a
WatchreloadReloader around the backend `watchreload.reloaders.get_reloader()` chooses. The
adapter keeps Django's `run()`/`run_loop()` and hands the rest to the backend:

- `watch_dir()`, `extra_files`, `directory_globs`, `watched_files()` are the backend's;
- `tick()` starts the backend's thread, waits for it to be ready, then turns each debounced
  ChangeSet into Django's `trigger_reload()` (exit code 3: Django's parent starts a new child);
- every path the backend reports passes through the backend's `notify_file_changed(path)`,
  which this adapter replaces with its own, Django's: it sends Django's `file_changed` signal
  (sender: this adapter, `file_path`: a Path); a receiver that returns True (a template change
  resets the loaders, a `.mo` change resets translations) has handled it and no reload happens,
  as in Django; otherwise the backend's own (watchreload's hooks, then a debounced reload);
- files of modules that failed to import, which Django's `check_errors()` records, are watched,
  so that fixing a syntax error reloads.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from django.utils import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    autoreload as django_autoreload,
)

from watchreload.config import load_config
from watchreload.errors import WatchreloadError
from watchreload.modules import record_error_file
from watchreload.reloaders import BaseReloader
from watchreload.reloaders import get_reloader as get_backend
from watchreload.setting_sources import read_pyproject

# Django's runserver shows this logger's INFO lines ("Watching for file changes with ...").
logger = logging.getLogger("django.utils.autoreload")
# watchreload's own detail: configure it in LOGGING to see it ("when does the watch start?").
detail = logging.getLogger(__name__)

READY_TIMEOUT_S = 10.0  # as watchreload.autoreload: start watching even if the crawl is slow
LOOP_S = 0.1  # how often tick() yields (to let run_loop() see stop()) and looks at error files


class WatchreloadReloader(django_autoreload.BaseReloader):  # type: ignore[misc, unused-ignore]
    """Django's BaseReloader whose watching is done by a watchreload backend (`self.backend`)."""

    def __init__(self, backend: BaseReloader) -> None:
        super().__init__()
        self.backend = backend
        # The same objects, so that code that adds to them as Django's reloader allows
        # (`sender.extra_files.add(path)`) reaches the backend.
        self.extra_files = backend.extra_files
        self.directory_globs = backend.directory_globs
        self._error_files_seen = 0
        # The funnel every change of the backend passes through; Django's signal comes first.
        self._backend_notify = backend.notify_file_changed
        backend.notify_file_changed = self.notify_file_changed  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"<WatchreloadReloader {self.backend.name} ({self.backend.reason})>"

    # -- what is watched (Django's names) ---------------------------------------------------

    def watch_dir(self, path: str | os.PathLike[str], glob: str) -> None:
        self.backend.watch_dir(path, glob)  # it skips a path that cannot be resolved, as Django

    def watched_files(self, include_globs: bool = True) -> Iterator[Path]:
        yield from self.backend.watched_files(include_globs)

    @classmethod
    def check_availability(cls) -> None:
        """Always available: get_reloader() has already chosen a backend that can run."""

    # -- running -----------------------------------------------------------------------------

    def tick(self) -> Iterator[None]:
        self.backend.start()
        try:
            if not self.backend.wait_until_ready(READY_TIMEOUT_S) and self.backend.error is None:
                logger.warning(
                    "watchreload: the %s watcher is not ready after %gs; watching anyway",
                    self.backend.name,
                    READY_TIMEOUT_S,
                )
            else:
                detail.debug("watchreload: the %s backend is watching", self.backend.name)
            while True:
                self._watch_error_files()
                changes = self.backend.wait_for_changes(LOOP_S)
                if changes is not None:
                    # Django says "<path> changed, reloading."; a batch is described whole.
                    paths = changes.paths
                    django_autoreload.trigger_reload(
                        paths[0] if len(paths) == 1 else changes.describe()
                    )
                if self.backend.error is not None:
                    raise WatchreloadError(
                        f"the {self.backend.name} reloader failed: {self.backend.error}"
                    ) from self.backend.error
                yield
        finally:
            self.backend.stop()
            self.backend.join(timeout_s=2.0)

    @property
    def should_stop(self) -> bool:
        return self.backend.should_stop

    def stop(self) -> None:
        self.backend.stop()

    # -- changes -----------------------------------------------------------------------------

    def notify_file_changed(self, path: str | os.PathLike[str]) -> None:
        """Django's: offer `path` to Django's `file_changed` receivers; if none handles it, the
        backend's (watchreload's `file_changed` hooks, then a debounced reload). Every change
        the backend finds comes here."""
        results = django_autoreload.file_changed.send(sender=self, file_path=Path(path))
        logger.debug("%s notified as changed. Signal results: %s.", path, results)
        if not any(result for _, result in results):
            self._backend_notify(path)

    def _watch_error_files(self) -> None:
        """Watch the files Django's check_errors() saw fail (a syntax error in a module)."""
        error_files: list[str] = getattr(django_autoreload, "_error_files", [])
        for filename in error_files[self._error_files_seen :]:
            record_error_file(filename)
        self._error_files_seen = len(error_files)


def _configured(name: str, pyproject: Path | None) -> bool:
    """True when `watch`/`glob` is set by WATCHRELOAD_* or [tool.watchreload], not defaulted."""
    if f"WATCHRELOAD_{name.upper()}" in os.environ:
        return True
    return pyproject is not None and name in read_pyproject(pyproject)


def get_reloader() -> WatchreloadReloader:
    """Django's get_reloader(), answered by watchreload: the backend `[tool.watchreload]` and
    WATCHRELOAD_* choose (auto: Watchman when available and the mount is sound, else stat)."""
    # load_config() is command mode's; a placeholder command stands in for runserver's own.
    config = load_config({"command": ("manage.py", "runserver")})
    backend = get_backend(
        config.backend,
        poll_interval_s=config.poll_interval_s,
        watchman_timeout_s=None,  # the setting, or Django's DJANGO_WATCHMAN_TIMEOUT when set
        roots=config.roots,
        ignore_patterns=config.ignore_patterns,
        watch_modules=True,
        debounce_ms=config.debounce_ms,
        debounce_max_ms=config.debounce_max_ms,
    )
    watched = ""
    # Django watches the imported modules and what autoreload_started receivers add; watch and
    # glob add to that only when they are set.
    if _configured("watch", config.pyproject) or _configured("glob", config.pyproject):
        for root in config.roots:
            for glob in config.include_globs:
                backend.watch_dir(root, glob)
        roots = ", ".join(map(str, config.roots))
        watched = f"; also watching {roots} for {', '.join(config.include_globs)}"
    reason = f" ({backend.reason})" if backend.reason else ""
    logger.info("watchreload: using the %s backend%s%s", backend.name, reason, watched)
    return WatchreloadReloader(backend)


_install_lock = threading.Lock()


def install() -> None:
    """Make Django's autoreloader (runserver's) use watchreload. Idempotent."""
    with _install_lock:
        if django_autoreload.get_reloader is not get_reloader:
            django_autoreload.get_reloader = get_reloader
