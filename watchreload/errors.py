"""The exceptions watchreload raises; each message names the value, the problem and the fix.

Every class carries the exit code the command line ends with when it reaches the top; the CLI
turns any WatchreloadError into one line and that code, in one place (cli.handle_errors).
Messages speak of settings ("setting `glob`", "the stat backend"), not of command-line flags: the
CLI adds the flag where it helps (cli.CLI_HINTS).
"""

from __future__ import annotations

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_COMMAND_NOT_EXECUTABLE = 126
EXIT_COMMAND_NOT_FOUND = 127
EXIT_INTERRUPTED = 130


class WatchreloadError(Exception):
    """Base class for every error watchreload reports to a user."""

    exit_code: int = EXIT_ERROR


class ConfigError(WatchreloadError):
    """A setting (option, environment variable or pyproject.toml key) has an invalid value."""

    exit_code = EXIT_USAGE


class WatchPathError(WatchreloadError):
    """A path to watch does not exist or is not a directory."""

    exit_code = EXIT_USAGE


class WatchmanUnavailable(WatchreloadError, RuntimeError):
    """Watchman cannot be used; the message says why. A RuntimeError, as Django's is."""


class CommandError(WatchreloadError):
    """The command to supervise cannot be started."""


class CommandNotFound(CommandError):
    """The command is not on PATH, or its path does not exist."""

    exit_code = EXIT_COMMAND_NOT_FOUND


class CommandNotExecutable(CommandError):
    """The command exists but cannot be executed."""

    exit_code = EXIT_COMMAND_NOT_EXECUTABLE


class ScriptNotFound(WatchreloadError, RuntimeError):
    """The program's script (sys.argv[0]) cannot be found to run it again. A RuntimeError, as
    Django's get_child_arguments() raises."""


class ReloaderFailed(WatchreloadError):
    """The backend stopped with an error; the child has been stopped."""


class GitHookError(WatchreloadError):
    """The git hooks cannot be installed."""


class ForwardError(WatchreloadError):
    """`watchreload forward` or `receive` cannot run: no supervisor listening, an unsafe runtime
    directory, a mapping that names no directory."""


class ForwardUsageError(ForwardError):
    """A `watchreload forward` mapping or option is malformed."""

    exit_code = EXIT_USAGE


class MalformedMessage(WatchreloadError, ValueError):
    """A line of the forwarded stream is not a message of the protocol (watchreload.forward)."""
