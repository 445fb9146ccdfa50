"""Edit → ready for real development servers under watchreload: python -m benchmarks.ready

For a Django (`manage.py runserver`), a heavier Django (DRF, pandas, SQLAlchemy, requests and
pydantic imported by its URLconf; once more with numpy's BLAS threads on), a Flask
(`flask run --reload`) and a FastAPI (`uvicorn --reload`) app, each generated in
`benchmarks/.work/ready/<name>/` and run with its usual command (watchreload turns the inner
reloader off), under each backend (the Watchman rows get a daemon of their own), by exec and then
with `--preload`, back to back in the same run: write `views.py` and time

- **ready line**: the N of `watchreload: ready in N ms`, counted by watchreload from the batch's
  first change to the listening report of the new server;
- **edit → served**: from the write to the first HTTP answer carrying the new text, polled every
  5 ms, measured here (it includes the debounce, the stop, the start and the first request).

Each run first waits for the first start's ready line, then warms up (3 s after each warm-up
edit): one edit by exec; with `--preload`, edits until a restart line says `(forked from the
preloaded template)` (the template is built once a child's imports have been quiet for 0.5 s:
edits closer together than that all restart by exec). A `--preload` edit restarted by exec is not
counted (its reason is printed); edits go on until ROUNDS forked ones, or twice ROUNDS edits.
Prints a markdown table of the medians (and the maximum), with the ratio preload / exec.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.procs import Spawned, WatchmanDaemon, wait_until

PYTHON = sys.executable
BIN = Path(PYTHON).parent
WORK = Path(__file__).resolve().parent / ".work" / "ready"
EVENT = re.compile(r"^watchreload: (restarting: .*|ready in (\d+) ms .*)$", re.MULTILINE)
FORKED = "(forked from the preloaded template)"
ROUNDS = 7
WARMUP_EDITS = 6  # --preload: at most this many edits until a restart is forked
# After a warm-up edit: the template is built once a child's imports have been quiet for 0.5 s,
# and building it takes an import of everything; an edit sooner restarts by exec again.
WARMUP_PAUSE_S = 3.0
PAUSE_S = 0.3  # between counted edits, after the ready line
TIMEOUT_S = 60.0
MODES = ("exec", "preload")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def _manage_py(root: Path) -> None:
    _write(
        root / "manage.py",
        """
        import os, sys
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
        from django.core.management import execute_from_command_line
        execute_from_command_line(sys.argv)
        """,
    )


def _django_site(root: Path, *apps: str) -> None:
    """manage.py and the settings of a Django site with `apps` besides contenttypes and auth."""
    _manage_py(root)
    installed = ["django.contrib.contenttypes", "django.contrib.auth", *apps]
    _write(
        root / "site_settings.py",
        f"""
        DEBUG = True
        SECRET_KEY = "bench"
        ALLOWED_HOSTS = ["*"]
        ROOT_URLCONF = "urls"
        INSTALLED_APPS = {installed!r}
        DATABASES = {{}}
        """,
    )


def django_app(root: Path, port: int) -> list[str]:
    _django_site(root)
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


# What the heavier project's URLconf imports: DRF, pandas (and numpy), SQLAlchemy's ORM, pydantic
# and requests, each used a little, as a real project's api module would.
HEAVY_API = """
    import numpy
    import pandas
    import pydantic
    import requests
    import sqlalchemy
    from rest_framework import routers, serializers, viewsets
    from rest_framework.response import Response
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = "item"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sqlalchemy.String(50))

    class ItemIn(pydantic.BaseModel):
        name: str

    class ItemSerializer(serializers.Serializer):
        name = serializers.CharField()

    class ItemViewSet(viewsets.ViewSet):
        def list(self, request):
            frame = pandas.DataFrame({"name": ["a", "b"], "n": numpy.arange(2)})
            return Response(ItemSerializer(frame.to_dict("records"), many=True).data)

    router = routers.DefaultRouter()
    router.register("items", ItemViewSet, basename="item")
    session = requests.Session()
    """


def django_heavy_app(root: Path, port: int) -> list[str]:
    """The Django site with DRF and a few large libraries that its URLconf imports at start."""
    _django_site(root, "rest_framework")
    _write(root / "api.py", HEAVY_API)
    _write(
        root / "urls.py",
        """
        from django.http import HttpResponse
        from django.urls import include, path
        import api
        import views
        urlpatterns = [
            path("", lambda request: HttpResponse(views.TEXT)),
            path("api/", include(api.router.urls)),
        ]
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
    "django-heavy": django_heavy_app,
    "django-heavy-blas": django_heavy_app,  # numpy's own BLAS threads: see APP_ENV
    "flask": flask_app,
    "fastapi": fastapi_app,
}

# numpy's OpenBLAS starts a thread per extra core when it loads, which makes a template unsafe to
# fork from: watchreload names the module and leaves numpy out, and with it pandas, which imports
# it (the django-heavy-blas row). With one BLAS thread (django-heavy), numpy and pandas are
# preloaded. The same environment for exec and --preload.
APP_ENV: dict[str, dict[str, str]] = {"django-heavy": {"OPENBLAS_NUM_THREADS": "1"}}


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


@dataclass
class Server:
    """One supervised app: its watchreload process, its port and root."""

    proc: Spawned
    port: int
    root: Path
    edits: int = 0

    def events(self) -> list[re.Match[str]]:
        """watchreload's restart and ready lines, in order (its own stream keeps their order)."""
        return list(EVENT.finditer(self.proc.log_path.read_text(errors="replace")))


@contextlib.contextmanager
def serving(app: str, backend: str, mode: str) -> Iterator[Server]:
    """Generate the app afresh, start it under watchreload, wait for it to serve and be ready."""
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
    env.update(APP_ENV.get(app, {}))
    daemon = WatchmanDaemon(WORK / "watchman" / app) if backend == "watchman" else None
    proc: Spawned | None = None
    try:
        if daemon is not None:
            daemon.start()
            env["WATCHMAN_SOCK"] = daemon.sockname
        flags = ["--preload"] if mode == "preload" else []
        argv = [PYTHON, "-m", "watchreload", "--backend", backend, *flags, "--", *command]
        log = WORK / f"{app}-{backend}-{mode}.log"
        proc = Spawned(argv, log_path=log, env=env, cwd=root, capture_stdout=False)
        server = Server(proc, port, root)
        wait_until(lambda: _body(port) == "v0", TIMEOUT_S, f"{app} to serve")
        wait_until(lambda: any(m[2] for m in server.events()), TIMEOUT_S, "the first ready line")
        yield server
    finally:
        if proc is not None:
            proc.stop()
        if daemon is not None:
            daemon.stop()


@dataclass(frozen=True)
class Edit:
    ready_ms: float
    served_ms: float
    restart: str  # watchreload's restart line for it, which names the path taken

    @property
    def forked(self) -> bool:
        return self.restart.endswith(FORKED)


def _ready_after(server: Server, before: int) -> tuple[str, float] | None:
    """The latest restart line after the first `before` ones, and the ready line that follows."""
    restart: str | None = None
    count = 0
    for match in server.events():
        if not match[2]:
            count += 1
            if count > before:
                restart = match[1]
        elif restart is not None:
            return restart, float(match[2])
    return None


def edit(server: Server, pause_s: float = PAUSE_S) -> Edit:
    """Write views.py; time it until the new text is served; read that restart's lines."""
    before = sum(1 for match in server.events() if not match[2])
    server.edits += 1
    text = f"v{server.edits}"
    started = time.monotonic()
    _write(server.root / "views.py", f"TEXT = {text!r}\n")
    wait_until(lambda: _body(server.port) == text, TIMEOUT_S, f"the server to serve {text}", 0.005)
    served_ms = (time.monotonic() - started) * 1000
    found = wait_until(lambda: _ready_after(server, before), TIMEOUT_S, "the restart's ready line")
    assert found is not None
    restart, ready_ms = found
    time.sleep(pause_s)
    return Edit(ready_ms, served_ms, restart)


@dataclass
class Row:
    mode: str
    warmup: list[str] = field(default_factory=list)  # the warm-up edits' restart lines
    edits: list[Edit] = field(default_factory=list)

    @property
    def counted(self) -> list[Edit]:
        return [e for e in self.edits if self.mode == "exec" or e.forked]

    def median(self, what: str) -> float | None:
        values = [getattr(e, what) for e in self.counted]
        return statistics.median(values) if values else None

    def cell(self, what: str) -> str:
        values = [getattr(e, what) for e in self.counted]
        if not values:
            return "-"
        return f"{statistics.median(values):.0f} / {max(values):.0f} ms"


def measure(app: str, backend: str, mode: str, rounds: int) -> Row:
    row = Row(mode)
    with serving(app, backend, mode) as server:
        for _ in range(WARMUP_EDITS if mode == "preload" else 1):
            warm = edit(server, WARMUP_PAUSE_S)
            row.warmup.append(warm.restart)
            if mode == "exec" or warm.forked:
                break
        else:
            return row  # never forked: no row
        while len(row.counted) < rounds and len(row.edits) < 2 * rounds:
            row.edits.append(edit(server))
    return row


def _ratio(preload: float | None, exec_: float | None) -> str:
    return "-" if preload is None or not exec_ else f"{preload / exec_:.2f}"


def table_line(app: str, backend: str, rows: dict[str, Row]) -> str:
    ex, pre = rows["exec"], rows["preload"]
    forked = f"{len(pre.counted)} of {len(pre.edits)} (warm-up {len(pre.warmup)})"
    return (
        f"| {app} | {backend} | {ex.cell('ready_ms')} | {pre.cell('ready_ms')} "
        f"| {_ratio(pre.median('ready_ms'), ex.median('ready_ms'))} "
        f"| {ex.cell('served_ms')} | {pre.cell('served_ms')} "
        f"| {_ratio(pre.median('served_ms'), ex.median('served_ms'))} | {forked} |"
    )


HEADER = (
    "| app | backend | ready line, exec (median / max) | ready line, --preload | ÷ exec "
    "| edit → served, exec | edit → served, --preload | ÷ exec | --preload edits forked |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def _notes(app: str, backend: str, rows: dict[str, Row]) -> list[str]:
    pre = rows["preload"]
    notes = [f"  {app}/{backend} --preload warm-up: {line}" for line in pre.warmup]
    notes += [
        f"  {app}/{backend} --preload not counted: {e.restart}" for e in pre.edits if not e.forked
    ]
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ready")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--only", nargs="+", choices=list(APPS), default=list(APPS))
    parser.add_argument("--backend", nargs="+", choices=["stat", "watchman"], default=["watchman"])
    args = parser.parse_args(argv)
    print(f"{args.rounds} counted edits per row; {os.cpu_count()} CPUs, {_load()}\n")
    print(HEADER, flush=True)
    notes: list[str] = []
    for app in args.only:
        for backend in args.backend:
            try:
                rows = {mode: measure(app, backend, mode, args.rounds) for mode in MODES}
            except Exception as exc:  # one row failing (a deadline) does not stop the others
                print(f"| {app} | {backend} | error: {exc} |", flush=True)
                continue
            print(table_line(app, backend, rows), flush=True)
            notes += _notes(app, backend, rows)
    print(f"\nat the end: {_load()}")
    print("\n".join(notes))
    return 0


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f}"


if __name__ == "__main__":
    sys.exit(main())
