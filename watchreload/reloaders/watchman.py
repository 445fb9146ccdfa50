"""Placeholder until the Watchman backend lands (issue 3)."""

from __future__ import annotations

from typing import Any

from watchreload.errors import WatchmanUnavailable
from watchreload.reloaders.base import BaseReloader


class WatchmanReloader(BaseReloader):
    name = "watchman"

    def __init__(self, *, timeout_s: float = 5.0, **options: Any) -> None:
        super().__init__(**options)
        self.timeout_s = timeout_s

    @classmethod
    def check_availability(cls, timeout_s: float = 5.0) -> None:
        raise WatchmanUnavailable("the Watchman backend is not built yet; use --backend=stat")
