"""Reconnecting to the Watchman daemon, and the stat scanner standing in while it is away.

A mixin of WatchmanReloader (reloader.py), which owns the session: `_reconnect` makes one attempt
through its `_connect`; while attempts fail, `_unreachable` takes the polling baseline at the
first failure and switches to polling (polling.py's PollingFallback) after `fallback_after_s`.
When a daemon answers again, a last scan covers the gap and the reloader is back on events.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from watchreload.changes import Change
from watchreload.reloaders.base import BaseReloader
from watchreload.reloaders.watchman.events import Subscription
from watchreload.reloaders.watchman.polling import PollingFallback
from watchreload.reloaders.watchman.session import (
    Backoff,
    Disconnected,
    describe_socket,
    start_default_daemon,
)
from watchreload.reloaders.watchman.wake import Waker
from watchreload.scan import Signature

logger = logging.getLogger(__name__)

_UNSEEN = object()  # no signature recorded


class ReconnectingMixin(BaseReloader):
    """WatchmanReloader's reconnect attempts and polling fallback; it sets these attributes."""

    timeout_s: float
    fallback_after_s: float
    poll_interval_s: float
    polling: bool
    _waker: Waker | None
    _fallback: PollingFallback | None
    _next_attempt: float
    _subs: dict[str, Subscription]
    _since_ns: int | None
    _reported: dict[str, Signature | None]

    def _connect(self) -> None:
        raise NotImplementedError  # WatchmanReloader's

    def _reconnect(self, backoff: Backoff) -> None:
        """One attempt to connect; while the daemon stays away, pace the attempts and poll."""
        if self.polling and time.monotonic() < self._next_attempt:
            self._poll_step()  # every poll_interval_s; attempts follow the backoff
            return
        started_pid = None
        if backoff.down_since is not None:
            started_pid = start_default_daemon(self.timeout_s)
        try:
            self._connect()
        except Disconnected as exc:
            self._unreachable(backoff, exc)
            return
        down_for = 0.0 if backoff.down_since is None else time.monotonic() - backoff.down_since
        backoff.reset()
        if started_pid is not None:
            logger.info(
                "the Watchman daemon was gone; started it again (pid %d), as the watchman "
                "command does",
                started_pid,
            )
        if self.polling:
            self._stop_polling(down_for)
        else:
            self._fallback = None
            if down_for and started_pid is None:
                logger.info("reconnected to Watchman after %.1fs", down_for)

    def _unreachable(self, backoff: Backoff, exc: Disconnected) -> None:
        """A failed attempt: take the polling baseline at once, poll from about a second on."""
        now = time.monotonic()
        if backoff.lost(now):
            logger.debug("Watchman is unreachable (%s); reconnecting", exc)
        assert backoff.down_since is not None and self._waker is not None
        if self._fallback is None:
            # At the first failure, not only once polling starts: what is deleted from now on
            # shows in the diff, and what was written since the last result in its mtime.
            self._fallback = PollingFallback(self.spec)
        down_for = now - backoff.down_since
        if not self.polling and down_for >= self.fallback_after_s:
            self._start_polling(exc)
        delay = backoff.next_delay()
        if self.polling:
            self._next_attempt = now + delay
            self._poll_step()
        else:  # try again, but switch to polling on time
            self._waker.wait(min(delay, max(0.0, self.fallback_after_s - down_for)))

    def _poll_step(self) -> None:
        assert self._waker is not None
        self._waker.wait(self.poll_interval_s)
        if not self.should_stop:
            self._poll_once()

    def _start_polling(self, exc: Disconnected) -> None:
        """Poll from what is already known: nothing to reload for, only what changed unseen.

        The first poll reports what differs from the baseline (taken at the first failed
        attempt) and every file whose mtime is at or after the moment the subscriptions were in
        place (`_since_ns`) and whose signature is not the one it had when the daemon last
        reported it: an edit made after the daemon died, or in the moment before, that no result
        delivered. No MTIME_SLACK_NS here: a file saved just before watchreload started is no
        change (mtimes lag the clock, never lead it).
        """
        logger.warning(
            "lost the Watchman daemon at %s (%s); polling the watched files every %gs until it "
            "answers again",
            describe_socket(),
            exc,
            self.poll_interval_s,
        )
        assert self._fallback is not None
        changes = dict(self._fallback.poll())
        since_ns = self._since_ns
        if since_ns is not None:
            for path, signature in self._fallback.snapshot.items():
                if (
                    path not in changes
                    and signature[0] >= since_ns
                    and self._reported.get(path, _UNSEEN) != signature
                ):
                    changes[path] = Change.modified
        self.polling = True
        self._since_ns, self._reported = None, {}
        for sub in self._subs.values():
            sub.clock = None  # the scanner covers the gap; a new daemon starts from a fresh clock
        self.ready.set()  # the scanner's baseline is taken: nothing is missed from here on
        if changes:
            self.notify_files_changed((Path(p), c) for p, c in changes.items())

    def _poll_once(self) -> None:
        if self._fallback is None:
            return
        changes = self._fallback.poll()
        if changes:
            self.notify_files_changed((Path(p), c) for p, c in changes)

    def _stop_polling(self, down_for_s: float) -> None:
        # Subscribed (clock taken) before this last scan, so no edit falls between the two.
        self._poll_once()
        self.polling = False
        self._fallback = None
        logger.info(
            "Watchman answers again after %.1fs; back on events, stopped polling", down_for_s
        )
