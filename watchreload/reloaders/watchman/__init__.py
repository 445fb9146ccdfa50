"""The Watchman backend: expression (pure), plan (pure), session (the one pywatchman importer),
events, and the reloader that ties them together."""

from watchreload.reloaders.watchman.reloader import WatchmanReloader

__all__ = ["WatchmanReloader"]
