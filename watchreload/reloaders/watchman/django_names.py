"""The names of Django's WatchmanReloader, on ours, for code written against Django's.

A mixin of WatchmanReloader (reloader.py), which sets the attributes declared here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from watchreload.errors import WatchmanUnavailable
from watchreload.reloaders.base import BaseReloader
from watchreload.reloaders.watchman.session import Session, check_availability


class DjangoNamesMixin(BaseReloader):
    """client, client_timeout, watched_roots, update_watches, request_processed and
    check_server_status, as Django's WatchmanReloader has them."""

    timeout_s: float
    crawl_timeout_s: float
    _session: Session | None
    _spec_dirty: bool

    def _wake(self) -> None:
        raise NotImplementedError  # WatchmanReloader's

    @property
    def client(self) -> Any:
        """The pywatchman client of the live session, or None while there is none. The reader
        thread owns it: use it only from a tick() that you drive yourself."""
        session = self._session
        return None if session is None else session.client

    @property
    def client_timeout(self) -> float:
        """Django's name for `timeout_s`: how long connecting may take, in seconds."""
        return self.timeout_s

    @client_timeout.setter
    def client_timeout(self, value: float) -> None:
        self.timeout_s = value
        self.crawl_timeout_s = max(self.crawl_timeout_s, value)

    def watched_roots(self, watched_files: Iterable[Path]) -> frozenset[Path]:
        """Django's: the directories given to watch_dir(), those of `watched_files` and those
        of sys.path. (Subscriptions are planned from the WatchSpec instead: one per
        watch-project root that covers what is watched; see plan.py.)"""
        from watchreload.modules import sys_path_directories

        with self._watch_lock:
            directories = list(self.directory_globs)
        parents = [Path(path).parent for path in watched_files]
        return frozenset((*directories, *parents, *sys_path_directories()))

    def update_watches(self) -> None:
        """Resubscribe for what is watched now at the reader's next step, rather than at its
        next spec check (every spec_check_s). Safe from any thread: it only wakes the reader."""
        self._spec_dirty = True
        self._wake()

    def request_processed(self, **kwargs: Any) -> None:
        """Django connects this to `request_finished`: a request may have imported modules."""
        self.update_watches()

    def check_server_status(self, inner_ex: BaseException | None = None) -> bool:
        """True when the daemon answers (asked on a connection of its own, not the reader's);
        otherwise raise WatchmanUnavailable, with `inner_ex` (the error that made you ask) as its
        cause."""
        try:
            check_availability(self.timeout_s)
        except WatchmanUnavailable as exc:
            if inner_ex is None:
                raise
            raise WatchmanUnavailable(f"{inner_ex} ({exc})") from inner_ex
        return True
