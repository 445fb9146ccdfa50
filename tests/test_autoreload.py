"""Library mode end to end: a real program calls run_with_reloader and real files are edited."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import PYTHON, Spawned, stays, wait_for
from watchreload.autoreload import get_child_arguments

PROGRAM = textwrap.dedent(
    """
    import os
    import sys
    import threading

    from watchreload import autoreload_started, run_with_reloader


    @autoreload_started.connect
    def watch_templates(sender, **kwargs):
        sender.watch_dir(os.path.join(os.path.dirname(__file__), "templates"), "**/*.html")


    def main(greeting):
        import helper  # imported here, so that a syntax error in it is reported, then watched

        with open(os.environ["STARTS_FILE"], "a") as f:
            f.write(f"{os.getpid()} {greeting} {helper.VALUE}\\n")
        if helper.VALUE == "exit":
            os._exit(7)
        threading.Event().wait()


    if __name__ == "__main__":
        run_with_reloader(main, "hello")
    """
)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(PROGRAM)
    (tmp_path / "helper.py").write_text("VALUE = 'one'\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text("<p>hi</p>\n")
    return tmp_path


def starts(app: Path) -> list[str]:
    path = app / "starts.txt"
    return path.read_text().splitlines() if path.exists() else []


def run_app(spawn: Callable[..., Spawned], app: Path, backend: str) -> Spawned:
    env = {
        **os.environ,
        "STARTS_FILE": str(app / "starts.txt"),
        "WATCHRELOAD_BACKEND": backend,
        "WATCHRELOAD_POLL_INTERVAL": "0.05",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    process = spawn([PYTHON, "app.py"], cwd=app, env=env)
    wait_for(lambda: len(starts(app)) == 1, message="the first start")
    return process


def stop(process: Spawned) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait()


def test_editing_an_imported_module_restarts_the_program(
    spawn: Callable[..., Spawned], app: Path, backend: str
) -> None:
    process = run_app(spawn, app, backend)
    # helper.py was imported after the watcher started: that alone must not restart (and loop).
    assert stays(lambda: len(starts(app)) == 1, duration_s=0.5)
    (app / "helper.py").write_text("VALUE = 'two'\n")
    wait_for(lambda: len(starts(app)) == 2, message="a restart after editing helper.py")
    assert starts(app)[1].endswith("hello two")
    first_pid, second_pid = (line.split()[0] for line in starts(app))
    assert first_pid != second_pid
    stop(process)
    assert process.session_members() == []


def test_a_directory_watched_from_autoreload_started_restarts(
    spawn: Callable[..., Spawned], app: Path, backend: str
) -> None:
    process = run_app(spawn, app, backend)
    (app / "templates" / "page.html").write_text("<p>changed</p>\n")
    wait_for(lambda: len(starts(app)) == 2, message="a restart after editing a template")
    stop(process)


def test_fixing_a_syntax_error_reloads(
    spawn: Callable[..., Spawned], app: Path, backend: str
) -> None:
    process = run_app(spawn, app, backend)
    (app / "helper.py").write_text("VALUE = (\n")  # the next child fails to import it
    wait_for(lambda: "SyntaxError" in process.output, message="the child to report the error")
    (app / "helper.py").write_text("VALUE = 'fixed'\n")
    wait_for(lambda: len(starts(app)) == 2, message="a restart once the error is fixed")
    assert starts(app)[1].endswith("hello fixed")
    stop(process)


def test_the_parent_exits_with_the_childs_exit_code(
    spawn: Callable[..., Spawned], app: Path
) -> None:
    process = run_app(spawn, app, "stat")
    (app / "helper.py").write_text("VALUE = 'exit'\n")
    assert process.wait() == 7
    assert len(starts(app)) == 2


def test_sigint_stops_parent_and_child(spawn: Callable[..., Spawned], app: Path) -> None:
    process = run_app(spawn, app, "stat")
    # Ctrl-C in a terminal reaches the whole foreground process group.
    os.killpg(process.pid, signal.SIGINT)
    process.wait()
    assert process.session_members() == []
    assert "Traceback" not in process.output


def child_arguments(argv: list[str], tmp_path: Path) -> list[str]:
    """get_child_arguments() as seen by a real interpreter started with `argv`."""
    (tmp_path / "prog.py").write_text(
        "import json, sys\nfrom watchreload import get_child_arguments\n"
        "print(json.dumps(get_child_arguments()))\n"
    )
    pkg = tmp_path / "pkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text((tmp_path / "prog.py").read_text())
    result = subprocess.run(
        [PYTHON, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=True
    )
    import json

    parsed: list[str] = json.loads(result.stdout)
    return parsed


def test_child_arguments_for_a_script(tmp_path: Path) -> None:
    args = child_arguments(
        ["-W", "ignore::DeprecationWarning", "-X", "faulthandler", "prog.py", "--x"], tmp_path
    )
    assert args == [PYTHON, "-Wignore::DeprecationWarning", "-Xfaulthandler", "prog.py", "--x"]


def test_child_arguments_for_a_package_run_with_dash_m(tmp_path: Path) -> None:
    args = child_arguments(["-X", "utf8=1", "-m", "pkg", "serve"], tmp_path)
    assert args == [PYTHON, "-Xutf8=1", "-m", "pkg", "serve"]


def test_child_arguments_in_this_process_rerun_the_test_runner() -> None:
    args = get_child_arguments()
    assert args[0] == sys.executable


# -- Django's names: the two bugs Django's own tests found --------------------------------------


def test_a_weakref_proxy_in_sys_modules_is_skipped(tmp_path: Path) -> None:
    import types
    import weakref

    from watchreload.autoreload import iter_all_python_module_files

    module = types.ModuleType("proxied")
    module.__file__ = str(tmp_path / "proxied.py")
    sys.modules["watchreload_test_proxy"] = weakref.proxy(module)
    try:
        files = iter_all_python_module_files()
    finally:
        del sys.modules["watchreload_test_proxy"]
    assert Path(__file__).resolve() in files


def test_watch_dir_skips_a_path_that_cannot_be_made_absolute(tmp_path: Path) -> None:
    from watchreload.reloaders.stat import StatReloader

    reloader = StatReloader(watch_modules=False)
    gone = tmp_path / "gone"
    gone.mkdir()
    previous = os.getcwd()
    os.chdir(gone)
    try:
        gone.rmdir()  # Path("locale").absolute() now raises FileNotFoundError
        reloader.watch_dir("locale", "**/*.mo")
    finally:
        os.chdir(previous)
    assert dict(reloader.directory_globs) == {}
    reloader.watch_dir(tmp_path / "not-yet", "*.py")  # a missing absolute one is kept, as Django
    assert list(reloader.directory_globs) == [tmp_path / "not-yet"]
