"""`manage.py runserver` with "watchreload.django" in INSTALLED_APPS, for real.

Each test generates a Django project (startproject + one app with a view and a template), runs
`python manage.py runserver 127.0.0.1:PORT` in a session of its own, and talks HTTP to it. The
view module prints a line when it is imported: each line is one start of Django's child process.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import Spawned, stays, wait_for

pytest.importorskip("django", reason="Django is not installed (pip install -e '.[test]')")

START_TIMEOUT_S = 45.0  # Django's child imports Django and runs its checks; CI machines are slow
IMPORTED = "hello.views imported"

VIEWS = """\
import os

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext

# Django connects its translation receivers when translation is first used (real projects use it
# at import, through the admin or forms); this app uses it at import too.
GREETING = gettext("hello")
print("{imported}", os.getpid(), flush=True)


def text(request):
    return HttpResponse("{text}")


def page(request):
    return render(request, "hello/page.html")
"""

# The adapter's debug line says when the backend watches: an edit made before that is Django's
# race too (the server answers before the reloader has its first snapshot), so tests wait for it.
WATCHING = "watchreload: the {backend} backend is watching"
SETTINGS = """
ALLOWED_HOSTS = ["127.0.0.1"]
TEMPLATES[0]["OPTIONS"]["context_processors"] = []
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"watchreload.django": {"handlers": ["console"], "level": "DEBUG"}},
}
"""

URLS = """\
from django.urls import path

from hello import views

urlpatterns = [path("", views.text), path("page/", views.page)]
"""


# A third-party app's use of Django's signals: watch a data directory, report every change.
APPS = """\
from pathlib import Path

from django.apps import AppConfig
from django.utils.autoreload import autoreload_started, file_changed


def watch_data(sender, **kwargs):
    sender.watch_dir(Path(__file__).parent / "data", "*.txt")


def report(sender, file_path, **kwargs):
    print("file_changed receiver:", file_path, type(sender).__name__, flush=True)


class HelloConfig(AppConfig):
    name = "hello"

    def ready(self):
        autoreload_started.connect(watch_data)
        file_changed.connect(report)
"""


def write_views(project: Path, text: str) -> None:
    (project / "hello" / "views.py").write_text(VIEWS.format(imported=IMPORTED, text=text))


def make_project(root: Path) -> Path:
    """A startproject project with the app `hello`, watchreload.django in INSTALLED_APPS."""
    project = root / "project"
    project.mkdir()
    for args in (["startproject", "site1", str(project)], ["startapp", "hello"]):
        subprocess.run([sys.executable, "-m", "django", *args], cwd=project, check=True, timeout=60)
    settings = project / "site1" / "settings.py"
    text = settings.read_text()
    text = re.sub(
        r"INSTALLED_APPS = \[.*?\]",
        'INSTALLED_APPS = ["django.contrib.staticfiles", "hello", "watchreload.django"]',
        text,
        flags=re.S,
    )
    text = re.sub(r"MIDDLEWARE = \[.*?\]", "MIDDLEWARE = []", text, flags=re.S)
    settings.write_text(text + SETTINGS)
    (project / "site1" / "urls.py").write_text(URLS)
    write_views(project, "version 1")
    templates = project / "hello" / "templates" / "hello"
    templates.mkdir(parents=True)
    (templates / "page.html").write_text("template A\n")
    (project / "hello" / "apps.py").write_text(APPS)
    (project / "hello" / "data").mkdir()
    (project / "hello" / "data" / "table.txt").write_text("1\n")
    messages = project / "hello" / "locale" / "de" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    (messages / "django.mo").write_bytes(b"")
    return project


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str) -> str | None:
    """The body at `url`, or None while the server is down or the view fails."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
            return body.decode().strip()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


class Runserver:
    def __init__(self, spawn: Callable[..., Spawned], project: Path, backend: str) -> None:
        self.backend = backend
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "WATCHRELOAD_BACKEND": backend,
            "WATCHRELOAD_POLL_INTERVAL": "0.2",
        }
        self.process = spawn(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}"],
            cwd=project,
            env=env,
        )

    @property
    def starts(self) -> int:
        return self.process.output.count(IMPORTED)

    def watching(self, children: int | None = None) -> None:
        """Wait until the backends of `children` children (default: all started) watch."""
        line = WATCHING.format(backend=self.backend)
        wait_for(
            lambda: self.process.output.count(line) >= (children or max(self.starts, 1)),
            timeout_s=START_TIMEOUT_S,
            message=f"the watcher to be ready; output:\n{self.process.output}",
        )

    def serves(self, text: str, path: str = "") -> None:
        wait_for(
            lambda: get(self.url + path) == text,
            timeout_s=START_TIMEOUT_S,
            interval_s=0.1,
            message=f"{self.url + path} to serve {text!r}; output:\n{self.process.output}",
        )

    def stop(self) -> int:
        """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(20)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


@pytest.fixture
def runserver(spawn: Callable[..., Spawned], project: Path, backend: str) -> Iterator[Runserver]:
    """runserver on the backend; stopped with Ctrl-C at teardown if the test did not stop it."""
    server = Runserver(spawn, project, backend)
    yield server
    if server.process.popen.poll() is None:
        server.stop()


def test_runserver_reloads_with_watchreload(
    runserver: Runserver, project: Path, backend: str
) -> None:
    server = runserver
    server.serves("version 1")
    server.watching()
    output = server.process.output
    assert f"watchreload: using the {backend} backend" in output, output
    assert "Watching for file changes with WatchreloadReloader" in output, output
    assert server.starts == 1, output

    # A view edit: one restart, the new text served.
    write_views(project, "version 2")
    server.serves("version 2")
    assert stays(lambda: server.starts == 2, 1.0), server.process.output
    server.watching()

    # A template edit: Django's template receiver resets the loaders; no restart.
    server.serves("template A", "page/")
    (project / "hello" / "templates" / "hello" / "page.html").write_text("template B\n")
    server.serves("template B", "page/")
    assert stays(lambda: server.starts == 2, 1.0), server.process.output

    assert server.stop() == 0, server.process.output
    assert server.process.session_members() == []


def test_syntax_error_is_shown_and_the_fix_reloads(runserver: Runserver, project: Path) -> None:
    server = runserver
    server.serves("version 1")
    server.watching()
    (project / "hello" / "views.py").write_text("def text(request:\n")
    wait_for(
        lambda: "SyntaxError" in server.process.output,
        timeout_s=START_TIMEOUT_S,
        message="the syntax error to be shown",
    )
    server.watching(children=2)  # the child that failed to import the views watches them
    assert get(server.url) is None
    write_views(project, "version 3")
    server.serves("version 3")
    assert stays(lambda: server.starts == 2, 1.0), server.process.output
    assert server.stop() == 0, server.process.output


def test_a_models_syntax_error_at_start_is_shown_and_the_fix_reloads(
    spawn: Callable[..., Spawned], project: Path, backend: str
) -> None:
    """django.setup() itself fails (before any app's ready()): still watchreload's reloader."""
    models = project / "hello" / "models.py"
    models.write_text("class Broken(\n")
    server = Runserver(spawn, project, backend)
    try:
        wait_for(
            lambda: "SyntaxError" in server.process.output,
            timeout_s=START_TIMEOUT_S,
            message="the syntax error to be shown",
        )
        server.watching(children=1)
        assert f"watchreload: using the {backend} backend" in server.process.output
        models.write_text("")
        server.serves("version 1")
        # Two children, each watching once: the broken one (whose reloader still imported the
        # URLconf, and so the views) and the fixed one.
        server.watching(children=2)
        watching = WATCHING.format(backend=backend)
        assert stays(lambda: server.process.output.count(watching) == 2, 1.0), server.process.output
    finally:
        if server.process.popen.poll() is None:
            assert server.stop() == 0, server.process.output


def test_django_receivers_keep_working(runserver: Runserver, project: Path) -> None:
    """Django's translation receiver handles a .mo change (no restart, as in Django); a receiver
    of a third-party app sees every change, and what it watches with sender.watch_dir reloads."""
    server = runserver
    server.serves("version 1")
    server.watching()
    mo = project / "hello" / "locale" / "de" / "LC_MESSAGES" / "django.mo"
    mo.write_bytes(b"\x00")
    wait_for(
        lambda: f"file_changed receiver: {mo} WatchreloadReloader" in server.process.output,
        timeout_s=START_TIMEOUT_S,
        message=f"the receiver to see {mo}; output:\n{server.process.output}",
    )
    assert stays(lambda: server.starts == 1, 1.0), server.process.output

    (project / "hello" / "data" / "table.txt").write_text("2\n")
    wait_for(lambda: server.starts == 2, timeout_s=START_TIMEOUT_S, message="a restart")
    server.serves("version 1")
    assert stays(lambda: server.starts == 2, 1.0), server.process.output
    assert server.stop() == 0, server.process.output


def test_noreload_runs_without_a_reloader(spawn: Callable[..., Spawned], project: Path) -> None:
    port = free_port()
    process = spawn(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=project,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    wait_for(
        lambda: get(f"http://127.0.0.1:{port}/") == "version 1",
        timeout_s=START_TIMEOUT_S,
        interval_s=0.1,
        message=f"the server to start; output:\n{process.output}",
    )
    assert "watchreload" not in process.output
    assert "Watching for file changes" not in process.output
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(20) == 0, process.output
