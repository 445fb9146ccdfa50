"""Plays the Supervisor's part with watchreload.terminal, for tests/test_terminal.py.

    tty_driver.py [--lazy] -- COMMAND...

Runs COMMAND in a process group of its own with a GroupWitness in it (which kills the group when
the driver dies), lends it the terminal when there is one and prints `DRIVER ...` lines. When the
child exits by itself, the driver exits with its status. A keyboard signal that reached the
child's group ends the driver too (with the child's status). SIGHUP restarts the child, unless the
terminal hung up: then the driver stops the child and exits 129. With --lazy the terminal is given
only when the child stops on SIGTTIN; with --no-waitid the driver runs without os.waitid, as on
macOS.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from watchreload.terminal import ForegroundTerminal, GroupWitness

POLL_S = 0.02
hangups: list[int] = []


def say(text: str) -> None:
    """A line on the terminal, and in WATCHRELOAD_TEST_LOG (readable after a hang-up)."""
    log = os.environ.get("WATCHRELOAD_TEST_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"DRIVER {text}\n")
    with contextlib.suppress(OSError):  # EIO once the terminal has hung up
        print(f"DRIVER {text}", flush=True)


def status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def stop(
    child: subprocess.Popen[bytes], witness: GroupWitness, terminal: ForegroundTerminal | None
) -> int:
    """Stop the child's group: SIGTERM, then SIGKILL after 5 s; the terminal back, input dropped."""
    witness.stop()
    signal_group(child.pid, signal.SIGTERM)
    signal_group(child.pid, signal.SIGCONT)
    try:
        child.wait(5)
    except subprocess.TimeoutExpired:
        signal_group(child.pid, signal.SIGKILL)
        child.wait(5)
    signal_group(child.pid, signal.SIGKILL)  # what is left of the group (grandchildren)
    if terminal is not None:
        terminal.take_back(flush_input=True)
    return child.returncode


def watch(
    child: subprocess.Popen[bytes], witness: GroupWitness, terminal: ForegroundTerminal | None
) -> str:
    """Until something happens: 'exit', 'keyboard', 'restart' or 'hangup'."""
    while True:
        if hangups:
            hangups.clear()
            return "hangup" if terminal is not None and terminal.hung_up() else "restart"
        if terminal is not None:
            stopped = terminal.follow_stop(child)
            if stopped is not None:
                say(f"child stopped by {signal.Signals(stopped).name}; resumed")
            if witness.signalled() is not None:
                return "keyboard"
        if child.poll() is not None:
            return "exit"
        time.sleep(POLL_S)


def run(command: list[str], terminal: ForegroundTerminal | None, lazy: bool) -> int:
    while True:
        child = subprocess.Popen(command, process_group=0)
        witness = GroupWitness(child.pid)  # before the hand-over: no Ctrl-C reaches it unseen
        say(f"child={child.pid}")
        if terminal is not None and not lazy:
            terminal.hand_to(child.pid)
        what = watch(child, witness, terminal)
        if what == "restart":
            say("restart")
            stop(child, witness, terminal)
            continue
        if what == "hangup":
            say("hangup")
            stop(child, witness, terminal)
            return 129
        if what == "keyboard":
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)  # the child got the same signal: let it end by itself first
            returncode = stop(child, witness, terminal)
        else:
            returncode = child.returncode
        key = witness.signalled(settle_s=1.0) if terminal is not None else None
        witness.stop()
        if terminal is not None:
            terminal.take_back(flush_input=False)
        say(f"exit rc={returncode} key={signal.Signals(key).name if key else None}")
        return status(returncode)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lazy", action="store_true")
    parser.add_argument("--no-waitid", action="store_true", help="as on macOS")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    if args.no_waitid:
        delattr(os, "waitid")

    def on_hup(signum: int, frame: FrameType | None) -> None:
        hangups.append(signum)

    signal.signal(signal.SIGHUP, on_hup)
    terminal = ForegroundTerminal.detect()
    say(f"pid={os.getpid()} terminal={'yes' if terminal is not None else 'no'}")
    if terminal is not None:
        terminal.save()
    try:
        code = run(args.command, terminal, args.lazy)
    finally:
        if terminal is not None:
            terminal.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
