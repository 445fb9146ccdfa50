"""The exceptions watchreload raises; each message names the value, the problem and the fix."""

from __future__ import annotations


class WatchreloadError(Exception):
    """Base class for every error watchreload reports to a user."""


class ConfigError(WatchreloadError):
    """A setting (option, environment variable or pyproject.toml key) has an invalid value."""


class WatchPathError(WatchreloadError):
    """A path to watch does not exist or is not a directory."""


class WatchmanUnavailable(WatchreloadError):
    """Watchman cannot be used; the message says why."""


class CommandError(WatchreloadError):
    """The command to supervise cannot be started."""
