"""Edit → ready for real development servers under watchreload: python -m benchmarks.ready

For a Django (`manage.py runserver`), a Flask (`flask run --reload`) and a FastAPI
(`uvicorn --reload`) app, each generated in `benchmarks/.work/ready/<name>/` and run with its
usual command (watchreload turns the inner reloader off), under each backend (the Watchman rows
get a daemon of their own), ROUNDS times: write `views.py`, then time

- **ready line**: the N of `watchreload: ready in N ms`, counted by watchreload from the batch's
  first change to the listening report of the new server;
- **edit → served**: from the write to the first HTTP answer carrying the new text, polled every
  5 ms, measured here (it includes the debounce, the stop, the start and the first request).

Prints a markdown table of the medians (and the maximum) per app and backend.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import socket
import statistics
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from benchmarks.procs import Spawned, WatchmanDaemon, wait_until

PYTHON = sys.executable
BIN = Path(PYTHON).parent
WORK = Path(__file__).resolve().parent / ".work" / "ready"
READY = re.compile(r"watchreload: ready in (\d+) ms")
ROUNDS = 7
TIMEOUT_S = 60.0


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def django_app(root: Path, port: int) -> list[str]:
    _write(
        root / "manage.py",
        """
        import os, sys
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
        from django.core.management import execute_from_command_line
        execute_from_command_line(sys.argv)
        """,
    )
    _write(
        root / "site_settings.py",
        """
        DEBUG = True
        SECRET_KEY = "bench"
        ALLOWED_HOSTS = ["*"]
        ROOT_URLCONF = "urls"
        INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
        DATABASES = {}
        """,
    )
    _write(
        root / "urls.py",
        """
        from django.http import HttpResponse
        from django.urls import path
        import views
        urlpatterns = [path("", lambda request: HttpResponse(views.TEXT))]
        """,
    )
    return [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}"]


def flask_app(root: Path, port: int) -> list[str]:
    _write(
        root / "app.py",
        """
        from flask import Flask
        import views
        app = Flask(__name__)
        app.add_url_rule("/", "index", lambda: views.TEXT)
        """,
    )
    return [str(BIN / "flask"), "--app", "app", "run", "--reload", "--port", str(port)]


def fastapi_app(root: Path, port: int) -> list[str]:
    _write(
        root / "app.py",
        """
        from fastapi import FastAPI
        from fastapi.responses import PlainTextResponse
        import views
        app = FastAPI()
        @app.get("/", response_class=PlainTextResponse)
        def index() -> str:
            return views.TEXT
        """,
    )
    return [str(BIN / "uvicorn"), "app:app", "--reload", "--port", str(port)]


APPS: dict[str, Callable[[Path, int], list[str]]] = {
    "django": django_app,
    "flask": flask_app,
    "fastapi": fastapi_app,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _body(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            data: bytes = response.read()
            return data.decode()
    except (OSError, http.client.HTTPException):  # the old server going, the new one coming
        return None


def measure(app: str, backend: str, rounds: int) -> dict[str, float]:
    root = WORK / app
    shutil.rmtree(root, ignore_errors=True)
    port = free_port()
    command = APPS[app](root, port)
    _write(root / "views.py", 'TEXT = "v0"\n')
    # Each app a Watchman project of its own: otherwise watch-project climbs to the repository
    # holding benchmarks/, whose daemon directory (log and state, written all the time) is then
    # inside the watch and keeps the daemon from settling: notifications came seconds late.
    _write(root / ".watchmanconfig", "{}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHRELOAD_")}
    env["PYTHONPATH"] = str(root)
    daemon = WatchmanDaemon(WORK / "watchman" / app) if backend == "watchman" else None
    proc: Spawned | None = None
    ready_ms: list[float] = []
    served_ms: list[float] = []
    try:
        if daemon is not None:
            daemon.start()
            env["WATCHMAN_SOCK"] = daemon.sockname
        argv = [PYTHON, "-m", "watchreload", "--backend", backend, "--", *command]
        proc = Spawned(
            argv, log_path=WORK / f"{app}-{backend}.log", env=env, cwd=root, capture_stdout=False
        )
        wait_until(lambda: _body(port) == "v0", TIMEOUT_S, f"{app} to serve")
        for i in range(1, rounds + 1):
            seen = len(READY.findall(proc.log_path.read_text()))
            text = f"v{i}"
            started = time.monotonic()
            _write(root / "views.py", f"TEXT = {text!r}\n")
            wait_until(lambda t=text: _body(port) == t, TIMEOUT_S, f"{app} to serve {text}", 0.005)
            served_ms.append((time.monotonic() - started) * 1000)
            lines = wait_until(
                lambda n=seen: READY.findall(proc.log_path.read_text())[n:], TIMEOUT_S, "ready"
            )
            ready_ms.append(float(lines[0]))
    finally:
        if proc is not None:
            proc.stop()
        if daemon is not None:
            daemon.stop()
    return {
        "ready_median_ms": statistics.median(ready_ms),
        "ready_max_ms": max(ready_ms),
        "served_median_ms": statistics.median(served_ms),
        "served_max_ms": max(served_ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ready")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--only", nargs="+", choices=list(APPS), default=list(APPS))
    parser.add_argument(
        "--backend", nargs="+", choices=["stat", "watchman"], default=["stat", "watchman"]
    )
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"{args.rounds} edits per row; {os.cpu_count()} CPUs, load {load:.2f}\n")
    print("| app | backend | ready line (median / max) | edit → served (median / max) |")
    print("| --- | --- | --- | --- |")
    for app in args.only:
        for backend in args.backend:
            r = measure(app, backend, args.rounds)
            print(
                f"| {app} | {backend} | {r['ready_median_ms']:.0f} / {r['ready_max_ms']:.0f} ms "
                f"| {r['served_median_ms']:.0f} / {r['served_max_ms']:.0f} ms |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
