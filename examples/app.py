"""A tiny web app to run under watchreload.

    watchreload --watch examples -- python examples/app.py

It prints one line with its pid when it starts, serves examples/greeting.py's MESSAGE on
http://127.0.0.1:8000/ (PORT changes the port; HOST=0.0.0.0 serves beyond this machine, as in a
container), and stops cleanly on SIGTERM, which is what watchreload sends before a restart.
Edit either file and watch the pid change.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from greeting import MESSAGE  # found next to this file


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{MESSAGE}\n(pid {os.getpid()})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the terminal for watchreload's lines


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    host = os.environ.get("HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, port), Handler)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, so call it from another thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    changed = json.loads(os.environ.get("WATCHRELOAD_CHANGES", "[]"))
    after = f" after {len(changed)} change(s)" if changed else ""
    print(f"app: pid {os.getpid()} serving http://{host}:{port}/{after}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print(f"app: pid {os.getpid()} stopped", flush=True)


if __name__ == "__main__":
    main()
