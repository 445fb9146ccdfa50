"""get_reloader(): which backend `auto` and `watchman` give, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import WatchmanDaemon
from watchreload.errors import WatchmanUnavailable
from watchreload.reloaders import get_reloader
from watchreload.reloaders.stat import StatReloader
from watchreload.reloaders.watchman import WatchmanReloader

pytestmark = pytest.mark.watchman


def test_available_with_the_isolated_daemon(watchman_daemon: WatchmanDaemon) -> None:
    WatchmanReloader.check_availability(timeout_s=5)
    reloader = get_reloader("auto", watch_modules=False)
    assert isinstance(reloader, WatchmanReloader)
    assert reloader.reason == "Watchman is available"


def test_unreachable_daemon_is_an_error_or_falls_back_with_the_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "no-such.sock"
    monkeypatch.setenv("WATCHMAN_SOCK", str(bogus))
    with pytest.raises(WatchmanUnavailable):
        get_reloader("watchman", watchman_timeout_s=0.5)
    fallback = get_reloader("auto", watchman_timeout_s=0.5)
    assert isinstance(fallback, StatReloader) and str(bogus) in fallback.reason
