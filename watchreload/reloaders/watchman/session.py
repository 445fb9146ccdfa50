"""The daemon connection: the only module of the backend that imports pywatchman.

It checks that a daemon answers and can do what we ask (`check_availability`), connects, paces
reconnecting (`Backoff`), and sends and reads PDUs (`Session`). Every transport failure becomes
`Disconnected`, which the reloader answers by reconnecting. pywatchman is imported only when the
backend is used.
"""

from __future__ import annotations

import importlib
import itertools
import json
import logging
import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from watchreload.errors import WatchmanUnavailable
from watchreload.reloaders.watchman.plan import Located

logger = logging.getLogger(__name__)

MIN_VERSION: tuple[int, int] = (4, 9)
REQUIRED_CAPABILITIES: tuple[str, ...] = (
    "cmd-watch-project",
    "relative_root",
    "wildmatch",
    "dedup_results",
    "cmd-state-enter",
    "cmd-state-leave",
    "field-new",
    "field-exists",
)
RECONNECT_BACKOFF_S: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class Disconnected(Exception):
    """The daemon connection is gone (or unusable); reconnect."""


def import_pywatchman() -> ModuleType:
    try:
        return importlib.import_module("pywatchman")
    except ImportError as exc:
        raise WatchmanUnavailable(
            f"pywatchman cannot be imported ({exc}); install it with 'pip install pywatchman' "
            "or use the stat backend"
        ) from exc


def describe_socket() -> str:
    sock = os.environ.get("WATCHMAN_SOCK")
    if sock:
        return f"socket {sock} (from WATCHMAN_SOCK)"
    return "the socket that 'watchman get-sockname' reports"


def parse_version(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        parts.append(int(digits or 0))
    return tuple(parts)


def check_availability(timeout_s: float = 5.0) -> None:
    """Raise WatchmanUnavailable, with the reason, unless a recent enough daemon answers."""
    pywatchman = import_pywatchman()
    if not os.environ.get("WATCHMAN_SOCK") and shutil.which("watchman") is None:
        raise WatchmanUnavailable(
            "the watchman binary is not on PATH and WATCHMAN_SOCK is not set; install Watchman "
            "('apt-get install watchman', 'brew install watchman') or use the stat backend"
        )
    started = time.monotonic()
    try:
        client = pywatchman.client(timeout=timeout_s)
        try:
            result = client.query("version", {"optional": list(REQUIRED_CAPABILITIES)})
        finally:
            client.close()
    except (pywatchman.WatchmanError, OSError) as exc:
        elapsed = time.monotonic() - started
        raise WatchmanUnavailable(
            f"the Watchman daemon at {describe_socket()} did not answer after {elapsed:.1f}s "
            f"(timeout {timeout_s:g}s): {exc}; start it with 'watchman version', fix "
            "WATCHMAN_SOCK, or use the stat backend"
        ) from exc
    check_version(result)


def check_version(result: dict[str, Any]) -> None:
    """Raise WatchmanUnavailable when a `version` answer is too old or lacks a capability."""
    version = str(result.get("version", "0"))
    if parse_version(version)[:2] < MIN_VERSION:
        wanted = ".".join(map(str, MIN_VERSION))
        raise WatchmanUnavailable(
            f"Watchman {version} is too old; watchreload needs {wanted} or newer: "
            "upgrade it, or use the stat backend"
        )
    capabilities = result.get("capabilities") or {}
    missing = [name for name in REQUIRED_CAPABILITIES if not capabilities.get(name)]
    if missing:
        raise WatchmanUnavailable(
            f"Watchman {version} lacks the capabilities {', '.join(missing)}; upgrade it, "
            "or use the stat backend"
        )


def start_default_daemon(timeout_s: float) -> int | None:
    """Start the per-user daemon when none answers, as every Watchman client does; its pid.

    Only without WATCHMAN_SOCK: a daemon on a socket someone named was started by them, with
    options we do not know, so it is never started here (None). Otherwise None when a daemon
    answers already or the binary is missing; else `watchman get-sockname` starts one (that is how
    the `watchman` command and pywatchman find the socket, and they start the daemon as they do).
    """
    binary = shutil.which("watchman")
    if os.environ.get("WATCHMAN_SOCK") or binary is None:
        return None
    if _daemon_pid(binary, timeout_s) is not None:
        return None
    try:
        subprocess.run(
            [binary, "get-sockname"], capture_output=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.debug("'watchman get-sockname' failed: %s", exc)
        return None
    return _daemon_pid(binary, timeout_s)


def _daemon_pid(binary: str, timeout_s: float) -> int | None:
    """The pid of the daemon that answers on the default socket, None when none answers.

    `--no-local` makes the client ask the daemon (Watchman 4.9 answers some commands itself).
    """
    try:
        result = subprocess.run(
            [binary, "--no-spawn", "--no-local", "--output-encoding=json", "get-pid"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    try:
        return int(json.loads(result.stdout)["pid"])
    except (ValueError, KeyError, TypeError):
        return None


class Backoff:
    """Since when the daemon is unreachable, and how long to wait before the next attempt."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self._attempt = 0

    def lost(self, now: float) -> bool:
        """Note that the daemon is unreachable; True when it was reachable until now."""
        if self.down_since is not None:
            return False
        self.down_since = now
        return True

    def next_delay(self) -> float:
        delay = RECONNECT_BACKOFF_S[min(self._attempt, len(RECONNECT_BACKOFF_S) - 1)]
        self._attempt += 1
        return delay

    def reset(self) -> None:
        self.down_since, self._attempt = None, 0


class Session:
    """One connection to the daemon.

    `on_pdu` receives the unilateral PDUs (subscription results, state changes) that arrive while
    we wait for the answer to a request; `on_warning` the warnings in answers; `on_command_error`
    the text of a request the daemon refused (before the refusal becomes Disconnected).
    """

    def __init__(
        self,
        pywatchman: ModuleType,
        client: Any,
        *,
        on_pdu: Callable[[Any], None],
        on_warning: Callable[[str], None],
        on_command_error: Callable[[str], None],
    ) -> None:
        self._pw = pywatchman
        self._client = client
        self._on_pdu = on_pdu
        self._on_warning = on_warning
        self._on_command_error = on_command_error

    @classmethod
    def connect(
        cls,
        pywatchman: ModuleType,
        *,
        timeout_s: float,
        crawl_timeout_s: float,
        on_pdu: Callable[[Any], None],
        on_warning: Callable[[str], None],
        on_command_error: Callable[[str], None],
    ) -> Session:
        """Connect within `timeout_s`; later requests may take `crawl_timeout_s`."""
        try:
            client = pywatchman.client(timeout=timeout_s)
            client.subs, client.sub_by_root, client.logs = {}, {}, []
            client.query("version")
            client.setTimeout(crawl_timeout_s)
        except (pywatchman.WatchmanError, OSError) as exc:
            raise Disconnected(str(exc) or type(exc).__name__) from exc  # callers name the socket
        return cls(
            pywatchman,
            client,
            on_pdu=on_pdu,
            on_warning=on_warning,
            on_command_error=on_command_error,
        )

    @property
    def socket(self) -> Any:
        """The daemon's socket (the connection-drop test shuts it down)."""
        return self._client.tport.sock

    def wait(self, wake_fd: int, timeout_s: float) -> tuple[bool, bool]:
        """Block until the daemon speaks or `wake_fd` is readable: (daemon readable, woken)."""
        try:
            sock = self._client.tport.sock
            readable, _, _ = select.select([sock, wake_fd], [], [], timeout_s)
        except (OSError, ValueError, AttributeError) as exc:
            raise Disconnected(str(exc)) from exc
        return sock in readable, wake_fd in readable

    def receive(self) -> None:
        """Read the next PDU and hand it to `on_pdu`, once (call it when `wait()` says the daemon
        is readable).

        pywatchman's `receive()` both returns a subscription PDU and buffers it; `_call` hands the
        buffered ones on except the one returned, which is handed on here.
        """
        self._on_pdu(self._call(self._client.receive))

    def query(self, *args: Any) -> Any:
        result = self._call(self._client.query, *args)
        if isinstance(result, dict) and "warning" in result:
            self._on_warning(str(result["warning"]))
        return result

    def watch_project(self, directory: str) -> Located:
        result = self.query("watch-project", directory)
        return str(result["watch"]), str(result.get("relative_path") or "")

    def watch_list(self) -> list[str]:
        return [str(r) for r in self.query("watch-list")["roots"]]

    def clock(self, root: str) -> str:
        return str(self.query("clock", root)["clock"])

    def subscribe(self, root: str, name: str, query: dict[str, Any]) -> None:
        self.query("subscribe", root, name, query)

    def unsubscribe(self, root: str, name: str) -> None:
        self.query("unsubscribe", root, name)

    def close(self) -> None:
        try:
            self._client.close()
        except OSError as exc:
            logger.debug("closing the Watchman connection failed: %s", exc)

    def _call(self, method: Any, *args: Any) -> Any:
        """Call the client, turning every transport failure into Disconnected."""
        pw, client = self._pw, self._client
        buffered: list[Any] = []
        try:
            result = method(*args)
        except pw.CommandError as exc:
            self._on_command_error(str(exc))
            raise Disconnected(f"Watchman refused {args[:1] or 'a read'}: {exc}") from exc
        except (pw.WatchmanError, OSError) as exc:
            raise Disconnected(str(exc) or type(exc).__name__) from exc
        finally:
            # pywatchman buffers unilateral PDUs in class-level dicts; keep ours per client.
            buffered = [pdu for pdus in client.subs.values() for pdu in pdus]
            client.subs.clear()
            client.sub_by_root.clear()
            client.logs.clear()
        for pdu in buffered:
            if pdu is not result:  # a PDU that receive() returned is its caller's to hand on
                self._on_pdu(pdu)
        return result
