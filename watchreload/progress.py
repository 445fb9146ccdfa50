"""Progress lines: what watchreload is waiting for, said once and, on a terminal, kept up to date.

The library only logs: a progress record carries `extra=progress(key)`, and each one states the
whole situation ("waiting for Watchman's first crawl of /repo ...; 3 s so far"). The CLI installs
ProgressHandler, which on a terminal rewrites the line in place (a carriage return and "clear to
end of line", no newline) for every record of the same key, and ends that line before any other
record; off a terminal (a log file, a CI job) it writes only the first record of each key, so a
log gets one line, not one per second.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TextIO

PROGRESS_ATTRIBUTE = "watchreload_progress"
REWRITE = "\r\x1b[K"  # to the start of the line, then clear it


def progress(key: str) -> dict[str, str]:
    """The `extra` of a progress record: records with the same key replace each other."""
    return {PROGRESS_ATTRIBUTE: key}


def progress_key(record: logging.LogRecord) -> str | None:
    key = getattr(record, PROGRESS_ATTRIBUTE, None)
    return key if isinstance(key, str) else None


class ProgressHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that shows progress records as one line, rewritten in place on a tty."""

    def __init__(self, stream: TextIO, *, tty: bool | None = None) -> None:
        super().__init__(stream)
        if tty is None:
            isatty = getattr(stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self._open_line = False  # a progress line without its newline is on the terminal
        self._written: set[str] = set()  # off a tty: the keys written once already

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            key = progress_key(record)
            if key is None:
                self._write(("\n" if self._open_line else "") + text + "\n")
                self._open_line = False
            elif self.tty:
                self._write(REWRITE + text)
                self._open_line = True
            elif key not in self._written:
                self._written.add(key)
                self._write(text + "\n")
        except Exception:  # logging's contract: report through handleError, never raise
            self.handleError(record)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.flush()

    def close(self) -> None:
        """End a progress line left open, so that the shell prompt starts on a line of its own."""
        self.acquire()
        try:
            if self._open_line:
                self._open_line = False
                with contextlib.suppress(OSError):  # the terminal has hung up
                    self._write("\n")
        finally:
            self.release()
        super().close()
