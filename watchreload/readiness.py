"""The ready line: how long a start of the child took until it listened on a TCP port.

    watchreload: ready in 412 ms (listening on 127.0.0.1:8000)

N is counted from the moment the change that caused the start was detected (the batch's first
change; the first start counts from when watchreload began to start it) to the moment the child
was seen listening: reported by the agent for a Python command, found in /proc for any other.
The address is shown as the server bound it: `0.0.0.0:8000` (or `[::]:8000`) means every
interface, which includes 127.0.0.1 (it is not rewritten, so that the line says what the server
did). Printed once per start, at INFO (so not with -q).
"""

from __future__ import annotations

import time

Address = tuple[str, int]


def show_address(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ready_text(elapsed_s: float, address: Address) -> str:
    return f"ready in {max(0.0, elapsed_s) * 1000:.0f} ms (listening on {show_address(address)})"


class Readiness:
    """One start's wait for its first listening socket; `seen()` answers the line once."""

    def __init__(self) -> None:
        self._since: float | None = None

    @property
    def waiting(self) -> bool:
        return self._since is not None

    def started(self, since: float | None) -> None:
        self._since = time.monotonic() if since is None else since

    def seen(self, address: Address | None, at: float | None = None) -> str | None:
        """The ready line the first time an address is seen for this start; None otherwise."""
        if self._since is None or address is None:
            return None
        elapsed = (time.monotonic() if at is None else at) - self._since
        self._since = None
        return ready_text(elapsed, address)

    def give_up(self) -> None:
        self._since = None
