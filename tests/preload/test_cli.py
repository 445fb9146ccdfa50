"""`--preload` through the real CLI: watchreload, its template and the children, edited for real.

Each test runs `python -m watchreload --preload ...` over a project in tmp_path and edits its
files until a restart line says "(forked from the preloaded template)" (the first restarts run
by exec while the template is built). The programs append what they saw at start (pid, parent,
values) as a JSON line to APP_LOG. Packages are installed into a fresh venv with pip, from
wheels the tests write.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.preload.conftest import alive
from tests.preload.programs import comparable, write_django_project, write_project
from tests.support import PYTHON, Spawned, wait_for

Spawn = Callable[..., Spawned]
FORKED = "(forked from the preloaded template)"
READY = "preload: template ready"
RESTART = re.compile(r"watchreload: restarting: .*")
DEADLINE_S = 60.0

APP = """\
import json, os, random, sys, threading, time
import helper
try:
    import {package}
    version = {package}.VERSION
except ImportError:
    version = "none"
with open(os.environ["APP_LOG"], "a") as f:
    f.write(json.dumps({{"pid": os.getpid(), "ppid": os.getppid(), "helper": helper.VALUE,
                        "version": version, "random": random.random(),
                        "threads": threading.active_count()}}) + "\\n")
if sys.argv[1:] == ["exit"]:
    sys.exit(3)
time.sleep(600)
"""


def write_wheel(directory: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A pure-Python wheel, as a build backend would write it."""
    dist = f"{name}-{version}.dist-info"
    entries = dict(files)
    entries[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    entries[f"{dist}/WHEEL"] = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for entry, text in entries.items():
        digest = hashlib.sha256(text.encode()).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{entry},sha256={encoded},{len(text.encode())}")
    entries[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for entry, text in entries.items():
            wheel.writestr(entry, text)
    return path


class Venv:
    def __init__(self, root: Path) -> None:
        self.root = root
        subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(root)], check=True, timeout=60)
        self.python = str(root / "bin" / "python")
        found = wait_for(lambda: list(root.glob("lib/python*/site-packages")), message="site")
        self.site = found[0]

    def pip(self, *args: str) -> None:
        command = [PYTHON, "-m", "pip", "--python", self.python, "-q", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr

    def install(self, name: str, version: str, init: str) -> None:
        wheel = write_wheel(self.root.parent, name, version, {f"{name}/__init__.py": init})
        self.pip("install", "--no-index", "--no-deps", str(wheel))


@pytest.fixture
def venv(tmp_path: Path) -> Venv:
    return Venv(tmp_path / "venv")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHRELOAD_", "PRELOAD_"))}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


class Run:
    """watchreload --preload over `project`, and what its children wrote to APP_LOG."""

    def __init__(self, spawn: Spawn, project: Path, command: list[str], *options: str) -> None:
        self.project = project
        self.log = project.parent / "app.log"
        self.edits = 0
        argv = [PYTHON, "-m", "watchreload", "--preload", "-w", str(project), *options]
        env = clean_env(APP_LOG=str(self.log), PRELOAD_OUT=str(project.parent / "out.json"))
        self.process = spawn([*argv, "--", *command], env=env, cwd=project)

    def starts(self) -> list[dict[str, Any]]:
        text = self.log.read_text() if self.log.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    def restarts(self) -> list[str]:
        return RESTART.findall(self.process.output)

    def wait_restart(self, seen: int) -> str:
        """The first restart line after the first `seen` ones."""
        return wait_for(lambda: self.restarts()[seen:], DEADLINE_S, message="a restart")[0]

    def wait_start(self, count: int) -> dict[str, Any]:
        starts = wait_for(lambda: self.starts()[count - 1 :], DEADLINE_S, message=f"start {count}")
        return starts[0]

    def edit(self, name: str = "helper.py") -> None:
        self.edits += 1
        (self.project / name).write_text(f"VALUE = {self.edits}\n")

    def restart_until_forked(self, name: str = "helper.py") -> dict[str, Any]:
        """Edit until a restart is forked; return what that child wrote."""
        for _ in range(10):
            starts, restarts = len(self.starts()), len(self.restarts())
            ready = self.process.output.count(READY)
            self.edit(name)
            line = self.wait_restart(restarts)
            started = self.wait_start(starts + 1)
            if FORKED in line:
                return started
            # By exec: no template was ready; one is (or will be) built from what ran.
            self.wait_ready(ready)
        raise AssertionError(f"no restart was forked:\n{self.process.output}")

    def count(self, text: str) -> int:
        return self.process.output.count(text)

    def wait_count(self, text: str, seen: int) -> None:
        """Until `text` has been said more than `seen` times."""
        wait_for(lambda: self.count(text) > seen, DEADLINE_S, message=text)

    def wait_ready(self, seen: int) -> None:
        """Until more than `seen` templates were said to be ready."""
        self.wait_count(READY, seen)

    def says(self, pattern: str) -> bool:
        return re.search(pattern, self.process.output) is not None

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(30)


def write_app(project: Path, package: str = "mypkg") -> None:
    project.mkdir(parents=True, exist_ok=True)
    (project / "app.py").write_text(APP.format(package=package))
    (project / "helper.py").write_text("VALUE = 0\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_app(tmp_path / "project")
    return tmp_path / "project"


def test_edits_are_served_by_forked_children_and_nothing_is_left(
    spawn: Spawn, project: Path, backend: str
) -> None:
    run = Run(spawn, project, [PYTHON, "app.py"], "--backend", backend)
    first = run.wait_start(1)
    assert first["ppid"] == run.process.pid  # exec'd by watchreload
    assert run.says(r"preload on")
    forked = run.restart_until_forked()
    assert forked["helper"] == run.edits  # the edited project module, imported fresh
    template = forked["ppid"]
    assert template != run.process.pid and alive(template)
    again = run.restart_until_forked()
    assert again["helper"] == run.edits and again["ppid"] == template
    assert again["random"] != forked["random"]  # reseeded in every child
    assert run.stop() == 128 + signal.SIGTERM  # the child's SIGTERM, as under exec
    assert not any(alive(pid) for pid in (template, forked["pid"], again["pid"]))


def test_sigkill_of_watchreload_leaves_no_template_and_no_child(
    spawn: Spawn, project: Path
) -> None:
    run = Run(spawn, project, [PYTHON, "app.py"], "--backend", "stat", "--poll-interval", "0.1")
    run.wait_start(1)
    forked = run.restart_until_forked()
    run.process.send_signal(signal.SIGKILL)
    run.process.wait()
    wait_for(
        lambda: not alive(forked["pid"]) and not alive(forked["ppid"]),
        message="the template and its child to be gone",
    )


def test_a_forked_childs_exit_status_is_reported_as_under_exec(spawn: Spawn, project: Path) -> None:
    run = Run(spawn, project, [PYTHON, "app.py", "exit"], "--backend", "stat")
    run.wait_start(1)
    wait_for(lambda: run.says("exited with status 3; waiting for a change"), DEADLINE_S)
    forked = run.restart_until_forked()
    assert forked["ppid"] != run.process.pid
    wait_for(lambda: run.process.output.count("exited with status 3") >= 2, DEADLINE_S)
    assert run.stop() == 3  # the last child's status


def test_installs_upgrades_uninstalls_and_site_edits_rebuild_the_template(
    spawn: Spawn, project: Path, venv: Venv
) -> None:
    venv.install("mypkg", "1.0", "VERSION = '1.0'\n")
    run = Run(spawn, project, [venv.python, "app.py"], "--backend", "stat")
    assert run.wait_start(1)["version"] == "1.0"
    assert run.restart_until_forked()["version"] == "1.0"

    def rebuilt_after(change: Callable[[], object]) -> dict[str, Any]:
        stale = run.process.output.count("the template is stale")
        change()
        wait_for(lambda: run.process.output.count("the template is stale") > stale, DEADLINE_S)
        return run.restart_until_forked()

    assert rebuilt_after(lambda: venv.install("mypkg", "2.0", "VERSION = '2.0'\n"))["version"] == (
        "2.0"
    )
    site_file = venv.site / "mypkg" / "__init__.py"
    assert rebuilt_after(lambda: site_file.write_text("VERSION = 'edited'\n"))["version"] == (
        "edited"
    )
    assert rebuilt_after(lambda: venv.pip("uninstall", "-y", "mypkg"))["version"] == "none"
    assert rebuilt_after(lambda: venv.install("mypkg", "3.0", "VERSION = '3.0'\n"))["version"] == (
        "3.0"
    )
    run.stop()


def test_a_module_that_starts_a_thread_at_import_is_named_and_left_out(
    spawn: Spawn, tmp_path: Path, venv: Venv
) -> None:
    threader = (
        "import threading\nVERSION = 't'\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
    )
    venv.install("threader", "1.0", threader)
    project = tmp_path / "threaded"
    write_app(project, package="threader")
    run = Run(spawn, project, [venv.python, "app.py"], "--backend", "stat")
    run.wait_start(1)
    forked = run.restart_until_forked()
    assert run.says(r"preload: the template is not fork-safe: threader \(")
    assert forked["version"] == "t" and forked["threads"] == 2  # imported fresh in the child
    run.stop()


def test_a_forked_child_that_crashes_where_exec_does_not_turns_preloading_off(
    spawn: Spawn, project: Path, venv: Venv
) -> None:
    # Like a library whose state does not survive fork(): used in another process, it aborts.
    venv.install("mypkg", "1.0", "import os\nVERSION = 'fragile'\n_PID = os.getpid()\n")
    (project / "app.py").write_text(
        "import mypkg, os\nif os.getpid() != mypkg._PID: os.abort()\n" + APP.format(package="mypkg")
    )
    run = Run(spawn, project, [venv.python, "app.py"], "--backend", "stat")
    run.wait_start(1)
    for _ in range(10):
        restarts, ready = len(run.restarts()), run.process.output.count(READY)
        run.edit()
        if FORKED in run.wait_restart(restarts):
            break
        run.wait_ready(ready)
    else:
        raise AssertionError(run.process.output)
    wait_for(lambda: run.says("was killed by SIGABRT; running it again by exec"), DEADLINE_S)
    wait_for(lambda: run.says(r"\(by exec: to compare with the forked child that was killed"))
    wait_for(lambda: run.says("preloading is off for this module set; restarts use exec"))
    restarts = len(run.restarts())
    run.edit()
    assert "preloading is off" in run.wait_restart(restarts)
    run.stop()


def test_a_template_that_dies_takes_its_child_which_starts_again_by_exec(
    spawn: Spawn, project: Path
) -> None:
    run = Run(spawn, project, [PYTHON, "app.py"], "--backend", "stat")
    run.wait_start(1)
    forked = run.restart_until_forked()
    starts = len(run.starts())
    os.kill(forked["ppid"], signal.SIGKILL)  # the template
    again = run.wait_start(starts + 1)  # no edit: started again at once
    assert run.says("was killed with the preloaded template")
    assert run.says(r"restarting: the preloaded template died, and its child with it \(by exec")
    assert again["ppid"] == run.process.pid and not alive(forked["pid"])
    assert run.restart_until_forked()["ppid"] not in (forked["ppid"], run.process.pid)
    run.stop()


def templates_of(pid: int) -> list[int]:
    """Live template processes started by `pid` (their command line names the private package)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and alive(int(entry)):
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if (
                int(stat[stat.rfind(")") + 2 :].split()[1]) == pid
                and b"_watchreload_preload" in command
            ):
                found.append(int(entry))
    return found


def test_stale_templates_do_not_pile_up(spawn: Spawn, project: Path) -> None:
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    run = Run(spawn, project, [PYTHON, "app.py"], "--backend", "stat")
    run.wait_start(1)
    run.restart_until_forked()
    ready = run.count(READY)
    for i in range(4):  # the project file rewritten again and again while the child runs
        if i:
            run.wait_ready(ready)  # the next template
            ready = run.count(READY)
        stale = run.count("the template is stale")
        (project / "pyproject.toml").write_text(f"[project]\nname = 'demo{i}'\n")
        run.wait_count("the template is stale", stale)
        # The one the running child was forked from, and at most the one being built.
        assert len(templates_of(run.process.pid)) <= 2
    run.wait_ready(run.count(READY))
    assert run.restart_until_forked()["helper"] == run.edits
    assert len(templates_of(run.process.pid)) == 1
    run.stop()


def test_a_run_that_imports_many_more_modules_gets_a_fuller_template(
    spawn: Spawn, project: Path
) -> None:
    (project / "app.py").write_text(
        "import os\n"
        "if os.path.exists('more'):\n"
        "    import asyncio, sqlite3, unittest, xml.etree.ElementTree, http.cookiejar\n"
        + APP.format(package="mypkg")
    )
    run = Run(spawn, project, [PYTHON, "app.py"], "--backend", "stat")
    run.wait_start(1)
    first = run.restart_until_forked()
    (project / "more").write_text("")
    run.restart_until_forked()  # this run imports them, from the first template
    ready = run.count(READY)
    starts, restarts = len(run.starts()), len(run.restarts())
    run.edit()
    run.wait_restart(restarts)
    run.wait_start(starts + 1)
    assert run.says(r"preload: the program imported \d+ more modules; adding them")
    run.wait_ready(ready)
    fuller = run.restart_until_forked()
    assert fuller["ppid"] != first["ppid"]  # the fuller template took over
    assert len(templates_of(run.process.pid)) == 1
    run.stop()


def test_a_broken_project_module_is_the_programs_error_not_the_forks(
    spawn: Spawn, project: Path
) -> None:
    run = Run(spawn, project, [PYTHON, "app.py"], "--backend", "stat")
    run.wait_start(1)
    run.restart_until_forked()
    restarts = len(run.restarts())
    (project / "helper.py").write_text("VALUE = (\n")  # a SyntaxError
    assert FORKED in run.wait_restart(restarts)
    wait_for(lambda: run.says("exited with status 1; waiting for a change"), DEADLINE_S)
    starts, restarts = len(run.starts()), len(run.restarts())
    run.edit()  # the fix
    assert FORKED in run.wait_restart(restarts)  # no exec to compare: the fork was not at fault
    assert run.wait_start(starts + 1)["helper"] == run.edits
    assert not run.says("to compare")
    assert "SyntaxError" in run.process.output
    assert "preload/child.py" not in run.process.output  # the traceback an exec'd run shows
    run.stop()


def observation(out: Path) -> dict[str, Any]:
    """What the child wrote to `out`, once it is whole; the file is removed for the next one."""

    def whole() -> dict[str, Any] | None:
        try:
            seen: dict[str, Any] = json.loads(out.read_text())
        except (OSError, ValueError):  # not there yet, or still being written
            return None
        return seen

    seen = wait_for(whole, DEADLINE_S, message="the child's observations")
    assert seen is not None
    out.unlink()
    return seen


@pytest.mark.parametrize("how", ["script", "module", "manage.py"])
def test_a_forked_child_sees_what_the_execd_one_saw(spawn: Spawn, tmp_path: Path, how: str) -> None:
    if how == "manage.py":
        project = write_django_project(tmp_path / "project")
        command, edited = [PYTHON, "manage.py", "check"], "mysite/urls.py"
    else:
        project = write_project(tmp_path)
        command = [PYTHON, "show.py"] if how == "script" else [PYTHON, "-m", "pkg"]
        edited = "helper.py"
    out = tmp_path / "out.json"
    run = Run(spawn, project, command, "--backend", "stat")
    execd = observation(out)
    for _ in range(20):
        restarts = len(run.restarts())
        with open(project / edited, "a") as f:
            f.write("\n# edited\n")
        line = run.wait_restart(restarts)
        seen = observation(out)
        if FORKED in line:
            break
    else:
        raise AssertionError(run.process.output)
    run.stop()

    def same(observed: dict[str, Any]) -> dict[str, Any]:
        env = {k: v for k, v in observed["env"].items() if not k.startswith("WATCHRELOAD_")}
        return dict(comparable(observed), env=env)

    assert same(seen) == same(execd)
    assert seen["pid"] != execd["pid"]
