"""A child program for the command-mode tests: it records each start, then waits to be stopped.

Each start appends one JSON line to --starts: its pid and process group, and what watchreload
told it (WATCHRELOAD_CHANGES, WATCHRELOAD_CHANGES_FILE, whose content is copied next to --starts
because watchreload deletes it at the next restart). The test counts the lines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

GRANDCHILD = """
import signal, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(60)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=Path, required=True)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--term-exit", type=int, help="exit with this status on SIGTERM")
    parser.add_argument("--grandchild", type=Path, help="start a grandchild, append its pid here")
    parser.add_argument("--grandchild-ignores-sigterm", action="store_true")
    parser.add_argument("--crash-when", type=Path, help="exit 3 at once while this file exists")
    parser.add_argument("--read-stdin", action="store_true", help="read a line after starting")
    args = parser.parse_args()

    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif args.term_exit is not None:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(args.term_exit))

    changes_file = os.environ.get("WATCHRELOAD_CHANGES_FILE")
    if changes_file:
        shutil.copyfile(changes_file, f"{args.starts}.{os.getpid()}.json")
    grandchild_pid = None
    if args.grandchild:
        mode = "ignore" if args.grandchild_ignores_sigterm else "default"
        grandchild = subprocess.Popen(
            [sys.executable, "-c", GRANDCHILD, mode], stdout=subprocess.PIPE
        )
        assert grandchild.stdout is not None
        grandchild.stdout.readline()  # its SIGTERM disposition is in place
        grandchild.stdout.close()
        grandchild_pid = grandchild.pid
    record = {
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "changes": os.environ.get("WATCHRELOAD_CHANGES"),
        "changes_file": changes_file,
        "grandchild": grandchild_pid,
    }
    # One write of one line with O_APPEND, so a reader never sees half a record.
    fd = os.open(args.starts, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(fd, (json.dumps(record) + "\n").encode())
    os.close(fd)

    if args.crash_when and args.crash_when.exists():
        sys.exit(3)
    if args.read_stdin:
        sys.stdin.readline()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
