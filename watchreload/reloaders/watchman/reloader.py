"""WatchmanReloader: one subscription per watched project, filtered inside the Watchman daemon.

The reader thread blocks on the daemon's socket (and on a wake-up pipe for `stop()` and spec
changes); it never sleeps to poll. What each subscription carries comes from plan.py (grouping)
and expression.py (the query); session.py holds the connection; events.py turns what the daemon
says into changes, held reloads and reports; git_terms.py asks for the git ignore terms;
polling.py stat()s what the daemon does not cover; fallback.py (a mixin) reconnects and polls
while the daemon is away; django_names.py (a mixin) adds Django's names. This module is the loop
that ties them together.

Faults: a dead daemon is noticed at once (its socket closes); we reconnect with backoff and
resubscribe from the last clock (the per-user daemon, with no WATCHMAN_SOCK, is started again as
the watchman command does). A daemon that lost its state answers with a fresh instance, which
gives one conservative reload. If reconnecting fails for `fallback_after_s` (1 s), the reloader
polls the same WatchSpec with scan.py's scanner, starting from what the daemon had told it (files
written since the subscriptions began and not as last reported count as changed), and goes back
to events when a daemon answers again.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from watchreload.changes import DEFAULT_DEBOUNCE_MS, Change, FileChange
from watchreload.reloaders.watchman.django_names import DjangoNamesMixin
from watchreload.reloaders.watchman.events import (
    EventHandler,
    Subscription,
    file_changes,
    reported_signatures,
)
from watchreload.reloaders.watchman.expression import subscription_query
from watchreload.reloaders.watchman.fallback import ReconnectingMixin
from watchreload.reloaders.watchman.git_terms import GitTerms
from watchreload.reloaders.watchman.plan import SubscriptionPlan, Watches, plan_subscriptions
from watchreload.reloaders.watchman.polling import PollingFallback, StatFiles
from watchreload.reloaders.watchman.session import (
    Backoff,
    Disconnected,
    Session,
    check_availability,
    describe_socket,
    import_pywatchman,
)
from watchreload.reloaders.watchman.wake import Waker
from watchreload.scan import Signature, signature_of, written_since
from watchreload.setting_sources import Settings
from watchreload.spec import WatchSpec

logger = logging.getLogger(__name__)

# How long reconnecting may fail before the scanner stands in (from what is already known, so the
# switch itself reloads nothing); the baseline is taken at the first failed attempt.
DEFAULT_FALLBACK_AFTER_S = 1.0
DEFAULT_SPEC_CHECK_S = 1.0
# In library mode a newly imported module must be watched at once: len(sys.modules) is compared
# this often (it costs nothing); the full spec only when it changed, or every spec_check_s.
MODULES_CHECK_S = 0.05
# watch-project and clock wait for the first crawl of a tree, which takes a while on a monorepo;
# timeout_s bounds connecting, this bounds those requests.
DEFAULT_CRAWL_TIMEOUT_S = 300.0
DEFAULT_POLL_INTERVAL_S = 1.0
# Watchman's default settle period: it sends a result once the tree has been quiet this long.
WATCHMAN_SETTLE_MS = 20

_subscription_ids = itertools.count(1)


class WatchmanReloader(ReconnectingMixin, DjangoNamesMixin):
    """Subscribes to the Watchman daemon and reloads on the changes it pushes."""

    name = "watchman"

    def __init__(
        self,
        *,
        timeout_s: float | None = None,
        fallback_after_s: float = DEFAULT_FALLBACK_AFTER_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        spec_check_s: float = DEFAULT_SPEC_CHECK_S,
        crawl_timeout_s: float = DEFAULT_CRAWL_TIMEOUT_S,
        debounce_ms: float = DEFAULT_DEBOUNCE_MS,
        **options: Any,
    ) -> None:
        # `debounce_ms` is the quiet period after the last write, on every backend. The daemon
        # already waits WATCHMAN_SETTLE_MS of quiet before it sends a result, so only the rest is
        # added here (nothing at the default): the same quiet, 20 ms sooner.
        super().__init__(debounce_ms=max(0.0, debounce_ms - WATCHMAN_SETTLE_MS), **options)
        if timeout_s is None:  # DJANGO_WATCHMAN_TIMEOUT, else the watchman-timeout setting
            timeout_s = Settings().watchman_timeout_s()
        self.timeout_s = timeout_s
        self.fallback_after_s = fallback_after_s
        self.poll_interval_s = poll_interval_s
        self.spec_check_s = spec_check_s
        self.crawl_timeout_s = max(crawl_timeout_s, timeout_s)
        self.polling = False  # True while Watchman is unreachable and the stat scanner stands in
        self.connections = 0  # how many times a session was established (for tests and logs)
        self.generation = 0  # counts completed subscription updates (spec changes, reconnects)
        self.results_received = 0  # subscription results handled, file lists (for tests)
        self.waiting_for = ""  # what a slow start waits for, which watching() reports
        self._session: Session | None = None
        self._pywatchman: ModuleType | None = None
        self._subs: dict[str, Subscription] = {}  # by watch root
        self._subs_by_name: dict[str, Subscription] = {}
        self._watches = Watches(self._watch_project)  # the roots watch-project answered
        self._spec: WatchSpec | None = None
        self._spec_dirty = True
        self._events = EventHandler(self.batcher)
        self._waker: Waker | None = None
        self._fallback: PollingFallback | None = None  # while polling
        self._next_attempt = 0.0  # while polling: when to try connecting again (monotonic)
        self._stat_files = StatFiles()  # extra files no watch covers
        self._pending: dict[Path, Signature | None] = {}  # newly watched: compare once subscribed
        # What the daemon has told us, for a switch to polling: since when the subscriptions
        # report every change (time.time_ns(), taken once their clocks are), and the signature
        # of each file it reported, as it saw it (mtime_ns, size, ino in the result).
        self._since_ns: int | None = None
        self._reported: dict[str, Signature | None] = {}
        self._spec_ns = time.time_ns()  # when spec() was last read
        self._modules_seen = 0
        self._next_spec_check = 0.0
        self._next_stat_check = 0.0
        self._bursts = 0  # how many times notify_files_changed() was called
        self._git_terms = GitTerms()

    @classmethod
    def check_availability(cls, timeout_s: float = 5.0) -> None:
        check_availability(timeout_s)

    # -- what is watched (cheap change detection for a running reader) --------------------------

    def watch_dir(self, path: str | os.PathLike[str], glob: str) -> None:
        super().watch_dir(path, glob)
        self._spec_dirty = True
        self._wake()

    def watch_file(self, path: str | os.PathLike[str]) -> None:
        super().watch_file(path)
        self._spec_dirty = True
        self._wake()

    @property
    def subscriptions(self) -> dict[str, Subscription]:
        """Watch root -> our one subscription on it (a copy, for diagnostics and tests)."""
        return dict(self._subs)

    # -- running --------------------------------------------------------------------------------

    def stop(self) -> None:
        super().stop()
        self._wake()

    def _wake(self) -> None:
        waker = self._waker
        if waker is not None:
            waker.wake()

    def tick(self) -> Iterator[None]:
        self._pywatchman = import_pywatchman()
        self._waker = Waker()
        try:
            yield from self._run()
        finally:
            self._disconnect()
            self._events.release_states()
            waker, self._waker = self._waker, None
            waker.close()

    def _run(self) -> Iterator[None]:
        backoff = Backoff()
        while not self.should_stop:
            if self._session is None:
                self._reconnect(backoff)
            else:
                try:
                    self._step_until_news()
                except Disconnected as exc:
                    logger.debug("lost the Watchman connection (%s); reconnecting", exc)
                    self._disconnect()
                    self._events.release_states()
                    backoff.lost(time.monotonic())
            yield

    def _step(self) -> None:
        """Block until the daemon speaks, `stop()`/`watch_dir()` wake us or spec_check_s passes."""
        session, waker = self._session, self._waker
        assert session is not None and waker is not None
        timeout = min(MODULES_CHECK_S, self.spec_check_s) if self.watch_modules else None
        readable, woken = session.wait(waker.fileno, timeout or self.spec_check_s)
        if woken:
            waker.drain()
        if self.should_stop:
            return
        if readable:
            session.receive()  # hands the PDU to _handle
        if self._stat_files and time.monotonic() >= self._next_stat_check:
            self._next_stat_check = time.monotonic() + self.spec_check_s
            changes = self._stat_files.check()
            if changes:
                self.notify_files_changed(changes)
        now = time.monotonic()
        modules = len(sys.modules) if self.watch_modules else 0
        if self._spec_dirty or modules != self._modules_seen or now >= self._next_spec_check:
            self._modules_seen = modules
            self._next_spec_check = now + self.spec_check_s
            if self.gitignore_rules is not None and self.gitignore_rules.refresh():
                self.ignore_files_changed()  # one above the watched directory, or info/exclude
            self._update_subscriptions(force=False)

    # -- the session ----------------------------------------------------------------------------

    def _connect(self) -> None:
        assert self._pywatchman is not None
        if not self.ready.is_set():
            self.waiting_for = f"the Watchman daemon at {describe_socket()}"
        self._session = Session.connect(
            self._pywatchman,
            timeout_s=self.timeout_s,
            crawl_timeout_s=self.crawl_timeout_s,
            on_pdu=self._handle,
            on_warning=self._events.report_warning,
            on_command_error=self._events.report_error,
        )
        self.connections += 1
        try:
            self._update_subscriptions(force=True)
        except Disconnected:
            self._disconnect()
            raise

    def _disconnect(self) -> None:
        session, self._session = self._session, None
        self._subs_by_name.clear()
        self._watches.clear()
        if session is not None:
            session.close()

    def _live_session(self) -> Session:
        session = self._session
        assert session is not None
        return session

    def _watch_project(self, directory: str) -> tuple[str, str]:
        self.waiting_for = f"Watchman's first crawl of {directory} (once per daemon)"
        return self._live_session().watch_project(directory)

    def _update_subscriptions(self, *, force: bool) -> None:
        """(Re)subscribe where the spec changed; on a new session resubscribe every root."""
        dirty, self._spec_dirty = self._spec_dirty, False  # before spec(): a later watch_dir counts
        spec_ns = time.time_ns()
        spec = self.spec()
        if not force and not dirty and spec == self._spec:
            self._spec_ns = spec_ns
            return
        self._spec = spec
        session = self._live_session()
        plans = self._plan(spec, session)
        for root in list(self._subs):
            if root not in plans:
                sub = self._subs.pop(root)
                if not force:
                    session.unsubscribe(root, sub.name)
        for root, plan in plans.items():
            query = subscription_query(plan, spec.ignore, self._git_terms.of(session, plan, spec))
            self._subscribe(session, root, plan, query, force)
        # Files that joined a new watch: an edit between noticing them and subscribing counts.
        # A file that was not watched until now (a module imported since the last look) counts as
        # changed if it was written since that look.
        pending, self._pending = self._pending, {}
        changed = [
            (p, Change.modified)
            for p, sig in pending.items()
            if signature_of(p) != sig or written_since(sig, self._spec_ns)
        ]
        self._spec_ns = spec_ns
        if self._since_ns is None:
            self._since_ns = time.time_ns()  # the clocks are taken: the daemon reports from here
        if changed:
            self.notify_files_changed(changed)
        self.generation += 1
        self.waiting_for = ""
        self.ready.set()

    def _subscribe(
        self,
        session: Session,
        root: str,
        plan: SubscriptionPlan,
        query: dict[str, Any],
        force: bool,
    ) -> None:
        old = self._subs.get(root)
        if old is not None and not force and old.query == query:
            old.plan = plan
            return
        since = old.clock if old is not None else None
        if since is None:
            self.waiting_for = f"Watchman's first crawl of {root} (once per daemon)"
            since = session.clock(root)  # waits for the crawl
        query_with_since = dict(query, since=since)
        if old is not None:
            name = old.name
        else:
            name = f"watchreload-{os.getpid()}-{next(_subscription_ids)}"
        if old is not None and not force:
            # Watchman 4.9 keeps both when a name is subscribed twice; since= covers the gap.
            session.unsubscribe(root, name)
        sub = Subscription(plan=plan, name=name, query=query, clock=since)
        self._subs[root] = sub
        self._subs_by_name[name] = sub
        session.subscribe(root, name, query_with_since)
        logger.debug("subscribed %s to %s since %s: %s", name, root, since, query_with_since)

    def _plan(self, spec: WatchSpec, session: Session) -> dict[str, SubscriptionPlan]:
        self._watches.add(session.watch_list())
        planned = plan_subscriptions(spec, self._watches, self._note_new_watch)
        self._stat_files.update(planned.stat_files, self._spec_ns)
        return planned.plans

    def _note_new_watch(self, path: Path) -> None:
        self._pending[path] = signature_of(path)

    # -- git ignore rules inside the daemon ------------------------------------------------------

    def ignore_files_changed(self) -> None:
        self._git_terms.clear()
        self._spec_dirty = True  # the next step resubscribes with the new terms
        self._wake()

    # -- what the daemon says -------------------------------------------------------------------

    def _handle(self, pdu: Any) -> None:
        if not isinstance(pdu, dict):
            return
        if "warning" in pdu:
            self._events.report_warning(str(pdu["warning"]))
        sub = self._subscription_of(pdu)
        if sub is None:
            return
        root = sub.plan.watch_root
        if pdu.get("canceled"):
            # The watched directory itself went away (deleted, or `watchman watch-del`): its files
            # are gone too, which a reload should see. Resubscribing watches it through a parent.
            self.batcher.add_reason(f"Watchman stopped watching {root} (was it deleted?)")
            raise Disconnected(f"Watchman cancelled the subscription on {root}")
        self._events.handle_states(root, pdu)
        files = pdu.get("files")
        if files is not None:
            self.results_received += 1
        sub.take_clock(pdu)
        if files is None:
            return
        if pdu.get("is_fresh_instance"):
            self._events.fresh_instance(root)
            # The conservative reload covers everything until now; from here the new daemon
            # reports every change.
            self._since_ns, self._reported = time.time_ns(), {}
            return
        self.notify_files_changed(file_changes(sub.plan, files))
        self._reported.update(reported_signatures(sub.plan, files))

    def _subscription_of(self, pdu: dict[str, Any]) -> Subscription | None:
        """The live subscription a PDU is about; None for other PDUs and for replaced ones."""
        name = pdu.get("subscription")
        if name is None:
            return None
        sub = self._subs_by_name.get(str(name))
        if sub is None or self._subs.get(sub.plan.watch_root) is not sub:
            return None
        return sub

    def notify_files_changed(self, changes: Iterable[FileChange]) -> None:
        self._bursts += 1  # news for _step_until_news()
        super().notify_files_changed(changes)

    def _step_until_news(self) -> None:
        """One tick: steps until one reported changes, stop() or spec_check_s passed. Like
        Django's tick, which blocks in receive(), so that 'tick, edit, tick' sees the edit."""
        bursts, deadline = self._bursts, time.monotonic() + self.spec_check_s
        while self._session is not None and not self.should_stop:
            self._step()
            if self._bursts != bursts or time.monotonic() >= deadline:
                return
