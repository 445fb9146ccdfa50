"""The ready line and the inner reloader, against real Django, Flask and FastAPI servers run by
the real CLI on both backends; and the /proc reading behind the ready line of a non-Python
command."""

from __future__ import annotations

import functools
import http.client
import os
import re
import signal
import socket
import sys
import textwrap
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.programs.harness import POLL_INTERVAL, clean_environ, interrupt_at_teardown
from tests.support import PYTHON, Spawned, stays, wait_for
from watchreload.procfs import group_listening
from watchreload.readiness import Readiness, ready_text

Spawn = Callable[..., Spawned]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc")
READY = re.compile(r"watchreload: ready in (\d+) ms \(listening on ([^)]+)\)")
BIN = Path(PYTHON).parent


@pytest.fixture
def spawn(spawn: Spawn) -> Iterator[Spawn]:
    yield from interrupt_at_teardown(spawn)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def servers(process: Spawned) -> list[int]:
    """The processes under watchreload, less the terminal.GroupWitness shell in their group."""
    found = []
    for pid in process.session_members():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid != process.pid and b"kill -KILL 0" not in cmdline:
            found.append(pid)
    return found


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        body: bytes = response.read()
        return body.decode()


# -- the apps: each serves TEXT from views.py at / -----------------------------------------------


def django_app(root: Path, port: int) -> list[str]:
    write(root / "views.py", 'TEXT = "one"\n')
    write(
        root / "manage.py",
        """
        import os, sys
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_settings")
        from django.core.management import execute_from_command_line
        execute_from_command_line(sys.argv)
        """,
    )
    write(
        root / "site_settings.py",
        """
        DEBUG = True
        SECRET_KEY = "test"
        ALLOWED_HOSTS = ["*"]
        ROOT_URLCONF = "urls"
        INSTALLED_APPS = []
        DATABASES = {}
        """,
    )
    write(
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
    write(root / "views.py", 'TEXT = "one"\n')
    write(
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
    write(root / "views.py", 'TEXT = "one"\n')
    write(
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


# The module each app needs: Django in the `bench` extra, Flask, FastAPI and uvicorn too.
NEEDS = {"django": ["django"], "flask": ["flask"], "fastapi": ["fastapi", "uvicorn"]}
APPS = {
    "django": (django_app, "Django runserver's own reloader turned off (added --noreload)"),
    "flask": (flask_app, "flask run's own reloader turned off (--reload replaced by --no-reload)"),
    "fastapi": (fastapi_app, "uvicorn's own reloader turned off (dropped --reload)"),
}


@pytest.mark.parametrize("framework", list(APPS))
def test_one_server_per_restart_and_a_ready_line_each_time(
    spawn: Spawn, tmp_path: Path, backend: str, framework: str
) -> None:
    for module in NEEDS[framework]:
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[test]')")
    make, said = APPS[framework]
    root = tmp_path / "app"
    port = free_port()
    command = make(root, port)
    args = [PYTHON, "-m", "watchreload", "--backend", backend, "--poll-interval", POLL_INTERVAL]
    env = clean_environ(PYTHONPATH=str(root))
    process = spawn([*args, "--", *command], cwd=root, env=env)

    def ready_lines() -> list[tuple[str, str]]:
        return READY.findall(process.output)

    def one_server() -> bool:  # the server alone: no reloader parent in between
        return len(servers(process)) == 1

    def ready(n: int) -> bool:
        return len(ready_lines()) >= n

    def serving(text: str) -> bool:
        return get_or_none(port) == text

    for start, text in enumerate(["one", "two"], 1):
        wait_for(functools.partial(ready, start), timeout_s=30, message=f"ready line {start}")
        assert ready_lines()[-1][1] == f"127.0.0.1:{port}", process.output
        wait_for(functools.partial(serving, text), message=f"{framework} serving {text!r}")
        assert stays(one_server, 0.5), (servers(process), process.output)
        if start == 1:
            write(root / "views.py", 'TEXT = "two"\n')
    assert len(ready_lines()) == 2, process.output
    assert said in process.output.splitlines()[0]
    process.send_signal(signal.SIGINT)
    process.wait()


def test_keep_inner_reloader_leaves_the_command_alone(spawn: Spawn, tmp_path: Path) -> None:
    pytest.importorskip("django", reason="Django is not installed (pip install -e '.[test]')")
    root = tmp_path / "app"
    port = free_port()
    command = django_app(root, port)
    args = [PYTHON, "-m", "watchreload", "--backend", "stat", "--keep-inner-reloader", "--"]
    process = spawn([*args, *command], cwd=root, env=clean_environ(PYTHONPATH=str(root)))
    wait_for(lambda: get_or_none(port) == "one", timeout_s=30, message=process.output)
    assert "reloader turned off" not in process.output
    wait_for(lambda: len(servers(process)) == 2, message="runserver's own reloader")
    process.send_signal(signal.SIGINT)
    process.wait()


def get_or_none(port: int) -> str | None:
    try:
        return get(port)
    except (OSError, http.client.HTTPException):  # a server stopping or starting
        return None


@linux_only
def test_a_non_python_server_is_found_listening_in_proc(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    server = f"exec {PYTHON} -m http.server --bind 127.0.0.1 {port}"
    args = [PYTHON, "-m", "watchreload", "--backend", "stat", "--shell", "--", server]
    process = spawn(args, cwd=tmp_path, env=clean_environ())
    wait_for(lambda: READY.search(process.output), message=process.output)
    assert "; scope tree (not a Python command)" in process.output.splitlines()[0]
    assert f"(listening on 127.0.0.1:{port})" in process.output
    process.send_signal(signal.SIGINT)
    process.wait()


def test_quiet_prints_no_ready_line(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    server = [PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    args = [PYTHON, "-m", "watchreload", "-q", "--backend", "stat", "--", *server]
    process = spawn(args, cwd=tmp_path, env=clean_environ())
    wait_for(lambda: get_or_none(port) is not None, message="the server")
    assert stays(lambda: "ready in" not in process.output, 0.5), process.output
    process.send_signal(signal.SIGINT)
    process.wait()


# -- the pieces ------------------------------------------------------------------------------


@linux_only
def test_group_listening_finds_our_own_socket() -> None:
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        sock.listen()
        assert group_listening(os.getpgrp()) == ("::1", sock.getsockname()[1])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert group_listening(os.getpgrp()) is None  # bound, not listening
        sock.listen()
        assert group_listening(os.getpgrp()) == ("127.0.0.1", sock.getsockname()[1])


def test_the_ready_line_is_said_once_per_start() -> None:
    readiness = Readiness()
    assert readiness.seen(("127.0.0.1", 8000)) is None  # not started
    readiness.started(100.0)
    assert readiness.seen(None) is None
    assert readiness.seen(("::", 8000), at=100.25) == "ready in 250 ms (listening on [::]:8000)"
    assert readiness.seen(("::", 8000), at=101.0) is None
    assert ready_text(0.0123, ("0.0.0.0", 80)) == "ready in 12 ms (listening on 0.0.0.0:80)"
