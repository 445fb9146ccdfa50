"""What doctor asks Watchman, through the watchman binary, without ever starting a daemon.

Every request runs `watchman --no-spawn --no-local` (4.9's client otherwise answers some commands
itself when no daemon runs, so that `version` "succeeds" without one) with a timeout, so doctor
neither starts a daemon nor hangs on one that does not answer. Nothing here registers a watch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from watchreload.doctor import adapters
from watchreload.doctor.report import Check

logger = logging.getLogger(__name__)

POISON_MARK = "non-recoverable condition"
POISON_FIX = (
    "raise the limit that tripped (often fs.inotify.max_user_watches, see the inotify line), "
    "then run 'watchman watch-del-all' and 'watchman shutdown-server'"
)
INSTALL_FIX = (
    "install Watchman for the fast backend ('apt-get install watchman', 'brew install "
    "watchman'); until then auto polls"
)


FROM_ENVIRON = "set by WATCHMAN_SOCK"


class DaemonError(Exception):
    """The daemon did not answer, or answered with an error (`poisoned` tells which kind)."""

    def __init__(self, message: str, *, poisoned: bool = False) -> None:
        super().__init__(message)
        self.poisoned = poisoned


@dataclass(frozen=True)
class WatchmanCLI:
    """The watchman binary pointed at one socket."""

    binary: str
    sockname: str
    timeout_s: float
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def call(self, *command: Any, large: bool = False) -> dict[str, Any]:
        """Send one command; `large` answers (a listing of the tree) come back as BSER, which
        the binary passes through and pywatchman's C codec decodes several times faster than
        the binary writes and json reads the same answer."""
        logger.debug("asking %s: %s", self.sockname, command[0])
        codec = _bser_codec() if large else None
        args = [self.binary, f"--sockname={self.sockname}", "--no-spawn", "--no-local"]
        args += ["--no-pretty", f"--output-encoding={'json' if codec is None else 'bser'}", "-j"]
        try:
            done = subprocess.run(
                args,
                input=json.dumps(list(command)).encode(),
                capture_output=True,
                timeout=self.timeout_s,
                env=dict(self.environ),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DaemonError(f"no answer within {self.timeout_s:g}s") from exc
        except OSError as exc:
            raise DaemonError(f"cannot run {self.binary} ({exc.strerror or exc})") from exc
        answer = _decode(done.stdout, codec)
        if not isinstance(answer, dict):
            detail = done.stderr.decode(errors="replace").strip()
            raise DaemonError(f"no answer ({detail or f'exit status {done.returncode}'})")
        if "error" in answer:
            error = str(answer["error"])
            raise DaemonError(error.strip(), poisoned=POISON_MARK in error)
        return answer


def _bser_codec() -> Any:
    try:
        from pywatchman import bser
    except ImportError:
        return None
    return bser


def _decode(output: bytes, codec: Any) -> Any:
    if not output.strip():
        return None
    try:
        if codec is not None:
            return codec.loads(output, True, "utf-8", "surrogateescape")
        return json.loads(output)
    except ValueError:
        return None


def find_binary(environ: Mapping[str, str]) -> str | None:
    return shutil.which("watchman", path=environ.get("PATH", os.defpath))


def client_version(binary: str, environ: Mapping[str, str]) -> str:
    """The binary's own version (`watchman --version` needs no daemon)."""
    try:
        done = subprocess.run(
            [binary, "--version"],
            capture_output=True,
            text=True,
            timeout=5,
            env=dict(environ),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def find_socket(binary: str | None, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The daemon's socket and where that came from. `--no-spawn get-sockname` works out the
    per-user default in the client, without a daemon and without starting one."""
    sock = environ.get("WATCHMAN_SOCK")
    if sock:
        return sock, FROM_ENVIRON
    if binary is None:
        return None, "no watchman binary to ask"
    args = [binary, "--no-spawn", "--output-encoding=json", "get-sockname"]
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=5, env=dict(environ), check=False
        )
        answer = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None, "'watchman get-sockname' did not say"
    value = (
        answer.get("unix_domain") or answer.get("sockname") if isinstance(answer, dict) else None
    )
    if not value:
        return None, "'watchman get-sockname' did not say"
    return str(value), "the per-user socket, from 'watchman get-sockname'"


def check_binary(binary: str | None, version: str) -> Check:
    if binary is None:
        return Check("watchman", "info", "the watchman binary is not on PATH", INSTALL_FIX)
    shown = f"{binary} {version}".strip()
    return Check("watchman", "ok", shown, data={"binary": binary, "version": version})


def check_socket(sock: str | None, source: str) -> Check:
    if sock is None:
        return Check("watchman socket", "info", f"unknown ({source})", data={"socket": None})
    data = {"socket": sock, "source": source, "exists": os.path.exists(sock)}
    return Check("watchman socket", "ok", f"{sock} ({source})", data=data)


@dataclass
class DaemonState:
    """What `version` said, or why there was no answer."""

    answers: bool = False
    version: str = ""
    capabilities: dict[str, bool] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    error: str = ""
    poisoned: bool = False


def probe_daemon(cli: WatchmanCLI) -> DaemonState:
    started = time.monotonic()
    state = DaemonState()
    try:
        answer = cli.call("version", {"optional": list(adapters.required_capabilities())})
    except DaemonError as exc:
        state.error, state.poisoned = str(exc), exc.poisoned
    else:
        state.answers = True
        state.version = str(answer.get("version", ""))
        state.capabilities = {k: bool(v) for k, v in (answer.get("capabilities") or {}).items()}
    state.elapsed_ms = (time.monotonic() - started) * 1000
    return state


def check_daemon(state: DaemonState, sock: str, from_environ: bool) -> Check:
    data: dict[str, Any] = {
        "socket": sock,
        "answers": state.answers,
        "version": state.version,
        "capabilities": state.capabilities,
        "elapsed_ms": round(state.elapsed_ms, 1),
        "poisoned": state.poisoned,
    }
    if state.poisoned:
        summary = f"the daemon at {sock} is poisoned: {state.error.splitlines()[0]}"
        return Check("watchman daemon", "fail", summary, POISON_FIX, data)
    if not state.answers:
        summary = f"no daemon answers at {sock}: {state.error}"
        if from_environ:
            fix = (
                f"start it (watchman --sockname={sock}), or point WATCHMAN_SOCK at a running "
                "daemon, or unset WATCHMAN_SOCK (the per-user daemon is then started on demand)"
            )
            return Check("watchman daemon", "fail", summary, fix, data)
        summary = f"not running at {sock}; watchreload starts it on demand (doctor does not)"
        return Check("watchman daemon", "info", summary, None, data)
    return _check_version(state, sock, data)


def _check_version(state: DaemonState, sock: str, data: dict[str, Any]) -> Check:
    wanted = adapters.min_version()
    if adapters.parse_version(state.version)[:2] < wanted:
        summary = f"Watchman {state.version} is too old; watchreload needs {wanted[0]}.{wanted[1]}"
        return Check("watchman daemon", "fail", summary, "upgrade Watchman", data)
    missing = [c for c in adapters.required_capabilities() if not state.capabilities.get(c)]
    if missing:
        summary = f"Watchman {state.version} lacks the capabilities {', '.join(missing)}"
        return Check("watchman daemon", "fail", summary, "upgrade Watchman", data)
    summary = (
        f"Watchman {state.version} answers at {sock} in {state.elapsed_ms:.0f} ms; "
        f"all {len(adapters.required_capabilities())} required capabilities present"
    )
    return Check("watchman daemon", "ok", summary, None, data)


def watch_list(cli: WatchmanCLI) -> tuple[Check, list[str]]:
    try:
        roots = [str(root) for root in cli.call("watch-list").get("roots", [])]
    except DaemonError as exc:
        return Check("watch list", "fail", f"watch-list failed: {exc}", None, {}), []
    shown = ", ".join(roots[:5]) + (f" and {len(roots) - 5} more" if len(roots) > 5 else "")
    summary = f"the daemon watches {len(roots)} root(s)" + (f": {shown}" if roots else "")
    return Check("watch list", "info", summary, None, {"roots": roots}), roots


def watch_of(path: str, watched: list[str]) -> str | None:
    """The daemon's watch that covers `path` (real, absolute): the deepest one containing it."""
    covering = [r for r in watched if path == r or path.startswith(r.rstrip("/") + "/")]
    return max(covering, key=len) if covering else None
