"""Django's names on the backends, where watchreload gives them a meaning of its own to keep
(the rest is checked by Django's own tests: scripts/django-autoreload-tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchreload.modules import sys_path_directories
from watchreload.reloaders.stat import StatReloader
from watchreload.reloaders.watchman import WatchmanReloader


def test_sleep_time_paces_the_stat_reloader_unless_an_interval_is_given() -> None:
    class Slow(StatReloader):
        SLEEP_TIME = 3.0

    assert StatReloader(watch_modules=False).interval_s == 1.0
    assert Slow(watch_modules=False).interval_s == 3.0
    assert Slow(watch_modules=False, interval_s=0.25).interval_s == 0.25
    reloader = StatReloader(watch_modules=False)
    reloader.SLEEP_TIME = 0.01  # as Django's tests shorten it
    assert reloader.interval_s == 0.01


def test_the_watchman_timeout_is_djangos_variable_then_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no pyproject.toml
    monkeypatch.delenv("DJANGO_WATCHMAN_TIMEOUT", raising=False)
    monkeypatch.setenv("WATCHRELOAD_WATCHMAN_TIMEOUT", "3")
    assert WatchmanReloader(watch_modules=False).client_timeout == 3.0
    monkeypatch.setenv("DJANGO_WATCHMAN_TIMEOUT", "10")
    reloader = WatchmanReloader(watch_modules=False)
    assert reloader.client_timeout == 10.0
    assert WatchmanReloader(watch_modules=False, timeout_s=2.0).client_timeout == 2.0
    reloader.client_timeout = 4.0
    assert reloader.timeout_s == 4.0


def test_watched_roots_are_the_globbed_directories_the_files_parents_and_sys_path(
    tmp_path: Path,
) -> None:
    reloader = WatchmanReloader(watch_modules=False, timeout_s=1.0)
    reloader.watch_dir(tmp_path / "templates", "**/*.html")
    roots = reloader.watched_roots([tmp_path / "pkg" / "mod.py"])
    assert {tmp_path / "templates", tmp_path / "pkg"} <= roots
    assert set(sys_path_directories()) <= roots
    assert reloader.client is None  # no connection before it watches
