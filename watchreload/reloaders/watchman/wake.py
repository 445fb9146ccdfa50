"""A self-pipe that wakes the reader blocked in select(): `stop()` and `watch_dir()` write to it."""

from __future__ import annotations

import errno
import os
import select


class Waker:
    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    @property
    def fileno(self) -> int:
        """The end to select() on."""
        return self._r

    def wake(self) -> None:
        """Callable from any thread, also once the pipe is closed."""
        try:
            os.write(self._w, b"x")
        except OSError as exc:  # full pipe: a wake-up is already pending; closed: we are done
            if exc.errno not in (errno.EAGAIN, errno.EBADF):
                raise

    def drain(self) -> None:
        try:
            while os.read(self._r, 512):
                pass
        except BlockingIOError:
            pass

    def wait(self, timeout_s: float) -> None:
        """Sleep until woken or `timeout_s` passes."""
        select.select([self._r], [], [], timeout_s)
        self.drain()

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)
