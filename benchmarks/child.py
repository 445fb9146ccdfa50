"""The child every supervisor runs: logs its start, starts a grandchild, then waits."""

import os
import subprocess
import sys
import time

started = time.monotonic()
grandchild = subprocess.Popen(["sleep", "600"])
with open(os.environ["BENCH_CHILD_LOG"], "a") as log:
    log.write(f"{started:.6f} {os.getpid()} {grandchild.pid}\n")
try:
    time.sleep(600)
except KeyboardInterrupt:
    sys.exit(130)
