"""A child for tests/test_terminal.py and tests/test_tty_cli.py: one terminal behaviour per mode.

Modes, each with marker lines: input (reads a line: NAME? / GOT <line>), breakpoint (pdb, then
AFTER), breakpoint-wait (the same, then marks ./waiting and waits: after `c` pdb's SIGINT handler
makes Ctrl-C break into pdb again, so the child survives it), raw and noecho (leave the terminal
so and exit 0), raw-then-input (raw and waits the first time, input after: it marks ./raw-once),
catch-int (catches Ctrl-C and exits 0, as Django's runserver does), wait (SIGINT at its default),
ignore-hup (ignores SIGHUP and waits), grandchild (starts a grandchild in its group and waits).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import termios
import time
import tty


def wait_forever() -> None:
    while True:
        time.sleep(3600)


def main() -> None:
    mode = sys.argv[1]
    print(f"CHILD pid={os.getpid()} pgid={os.getpgrp()} mode={mode}", flush=True)
    if mode == "input":
        print("GOT", input("NAME? "), flush=True)
    elif mode == "breakpoint":
        value = 6
        breakpoint()
        print("AFTER", value, flush=True)
    elif mode == "breakpoint-wait":
        value = 7
        breakpoint()
        print("AFTER", value, flush=True)
        open("waiting", "w").close()  # print() has returned: a Ctrl-C now cannot re-enter it
        wait_forever()
    elif mode == "raw":
        tty.setraw(0)
        print("LEFT-RAW", flush=True)
    elif mode == "raw-then-input":  # the first start leaves the terminal raw and waits
        if os.path.exists("raw-once"):
            print("GOT", input("NAME? "), flush=True)
        else:
            open("raw-once", "w").close()
            tty.setraw(0)
            print("READY", flush=True)
            wait_forever()
    elif mode == "noecho":
        modes = termios.tcgetattr(0)
        modes[3] &= ~termios.ECHO
        termios.tcsetattr(0, termios.TCSADRAIN, modes)
        print("LEFT-NOECHO", flush=True)
    elif mode == "catch-int":
        try:
            print("READY", flush=True)
            wait_forever()
        except KeyboardInterrupt:
            print("CAUGHT", flush=True)
            sys.exit(0)
    elif mode == "ignore-hup":
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        print("READY", flush=True)
        wait_forever()
    elif mode == "grandchild":
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        print(f"GRANDCHILD pid={grandchild.pid}", flush=True)
        print("READY", flush=True)
        wait_forever()
    else:
        print("READY", flush=True)
        wait_forever()


if __name__ == "__main__":
    main()
