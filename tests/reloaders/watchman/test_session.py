"""Whether Watchman can be used, and pacing reconnects (watchreload.reloaders.watchman.session)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from watchreload.errors import WatchmanUnavailable
from watchreload.reloaders.watchman import WatchmanReloader
from watchreload.reloaders.watchman.session import (
    RECONNECT_BACKOFF_S,
    REQUIRED_CAPABILITIES,
    Backoff,
    check_version,
    parse_version,
    start_default_daemon,
)

# -- availability ---------------------------------------------------------------------------------


@pytest.mark.watchman
def test_unreachable_socket_names_the_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bogus = tmp_path / "no-such.sock"
    monkeypatch.setenv("WATCHMAN_SOCK", str(bogus))
    started = time.monotonic()
    with pytest.raises(WatchmanUnavailable) as excinfo:
        WatchmanReloader.check_availability(timeout_s=0.5)
    assert time.monotonic() - started < 5
    message = str(excinfo.value)
    assert (
        str(bogus) in message and "WATCHMAN_SOCK" in message and "did not answer after" in message
    )
    assert message.endswith("or use the stat backend")  # library messages name no CLI flag


@pytest.mark.watchman
def test_missing_binary_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHMAN_SOCK", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no watchman here
    with pytest.raises(WatchmanUnavailable, match="watchman binary is not on PATH"):
        WatchmanReloader.check_availability(timeout_s=0.5)


@pytest.mark.watchman
def test_pywatchman_import_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pywatchman", None)  # makes `import pywatchman` fail
    with pytest.raises(WatchmanUnavailable, match="pywatchman cannot be imported"):
        WatchmanReloader.check_availability(timeout_s=0.5)


ALL_CAPABILITIES = {name: True for name in REQUIRED_CAPABILITIES}


def test_a_recent_daemon_with_every_capability_passes() -> None:
    check_version({"version": "4.9.0", "capabilities": ALL_CAPABILITIES})
    check_version({"version": "2024.01.22.00", "capabilities": ALL_CAPABILITIES})


def test_an_old_daemon_is_named_with_the_version_needed() -> None:
    with pytest.raises(WatchmanUnavailable) as excinfo:
        check_version({"version": "4.7.0", "capabilities": ALL_CAPABILITIES})
    assert str(excinfo.value) == (
        "Watchman 4.7.0 is too old; watchreload needs 4.9 or newer: "
        "upgrade it, or use the stat backend"
    )


def test_missing_capabilities_are_named() -> None:
    capabilities = dict(ALL_CAPABILITIES, wildmatch=False)
    del capabilities["relative_root"]
    with pytest.raises(WatchmanUnavailable) as excinfo:
        check_version({"version": "4.9.0", "capabilities": capabilities})
    assert str(excinfo.value) == (
        "Watchman 4.9.0 lacks the capabilities relative_root, wildmatch; upgrade it, "
        "or use the stat backend"
    )


@pytest.mark.parametrize(
    ("version", "parsed"),
    [("4.9.0", (4, 9, 0)), ("2024.01.22.00", (2024, 1, 22, 0)), ("4.10rc1", (4, 10)), ("", (0,))],
)
def test_parse_version(version: str, parsed: tuple[int, ...]) -> None:
    assert parse_version(version) == parsed


# -- reconnecting ---------------------------------------------------------------------------------


def test_backoff_grows_to_its_cap_and_starts_over_once_reset() -> None:
    backoff = Backoff()
    assert backoff.lost(10.0) is True
    assert backoff.lost(11.0) is False  # still down: down_since stays the first failure
    assert backoff.down_since == 10.0
    delays = [backoff.next_delay() for _ in range(len(RECONNECT_BACKOFF_S) + 2)]
    assert delays == [*RECONNECT_BACKOFF_S, RECONNECT_BACKOFF_S[-1], RECONNECT_BACKOFF_S[-1]]
    backoff.reset()
    assert backoff.down_since is None
    assert backoff.next_delay() == RECONNECT_BACKOFF_S[0]


def test_a_daemon_named_by_watchman_sock_is_never_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the per-user daemon is started again; one on a named socket was started by someone
    with options we do not know (tests/reloaders/watchman/test_daemon_death.py starts the other)."""
    sock = tmp_path / "nobody.sock"
    monkeypatch.setenv("WATCHMAN_SOCK", str(sock))
    assert start_default_daemon(timeout_s=1.0) is None
    assert not sock.exists()
