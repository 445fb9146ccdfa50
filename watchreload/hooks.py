"""The two hooks Django users know: `autoreload_started` and `file_changed`.

A tiny stand-in for Django's signals, so that watchreload does not import Django. `send()` returns
`(receiver, result)` pairs; a `file_changed` receiver that returns True has handled the change
(as Django's translation reloader does) and no reload happens for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

Receiver = Callable[..., Any]


class Hook:
    def __init__(self, name: str) -> None:
        self.name = name
        self._receivers: list[Receiver] = []
        self._lock = threading.Lock()

    def connect(self, receiver: Receiver) -> Receiver:
        """Register a receiver; usable as a decorator. Connecting twice has no further effect."""
        with self._lock:
            if receiver not in self._receivers:
                self._receivers.append(receiver)
        return receiver

    def disconnect(self, receiver: Receiver) -> bool:
        with self._lock:
            if receiver in self._receivers:
                self._receivers.remove(receiver)
                return True
        return False

    def send(self, sender: object, **kwargs: Any) -> list[tuple[Receiver, Any]]:
        if not self._receivers:  # the common case, once per changed path of a burst: no lock
            return []
        with self._lock:
            receivers = list(self._receivers)
        return [(receiver, receiver(sender=sender, **kwargs)) for receiver in receivers]

    def __repr__(self) -> str:
        return f"<Hook {self.name}>"


autoreload_started = Hook("autoreload_started")
file_changed = Hook("file_changed")
