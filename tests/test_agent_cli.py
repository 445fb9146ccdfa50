"""Command mode with the agent, end to end on both backends: the real CLI over a real two-package
tree, restarts scoped to what the child imported, and a sibling package outside the root.

The child (SERVER below) is a small server: it imports its modules, listens on a port, records
its start and serves. Listening makes the agent report at once (what it imported with it), and
watchreload prints its ready line then: the tests wait for that line before editing, so that
the report has arrived.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.programs.harness import POLL_INTERVAL, clean_environ, interrupt_at_teardown
from tests.support import PYTHON, Spawned, stays, wait_for

Spawn = Callable[..., Spawned]

SERVER = """
import json, os, socket, sys, time
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import app.blog.models
{extra_import}
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({{"pid": os.getpid(), "port": server.getsockname()[1]}}) + "\\n")
while True:
    time.sleep(60)
"""


@pytest.fixture
def spawn(spawn: Spawn) -> Iterator[Spawn]:
    yield from interrupt_at_teardown(spawn)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def make_tree(root: Path, extra_import: str = "") -> Path:
    write(root / "app" / "__init__.py", "")
    write(root / "app" / "main.py", SERVER.format(extra_import=extra_import))
    write(root / "app" / "blog" / "__init__.py", "")
    write(root / "app" / "blog" / "models.py", "MODELS = []\n")
    write(root / "other" / "__init__.py", "")
    write(root / "other" / "tool.py", "TOOL = 1\n")  # in the tree, imported by nobody
    return root


class Run:
    """`python -m watchreload` over `python app/main.py` in `tree`."""

    def __init__(
        self,
        spawn: Spawn,
        tree: Path,
        backend: str,
        *,
        python: str = PYTHON,
        options: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.starts = tree.parent / "starts.jsonl"
        args = [PYTHON, "-m", "watchreload", "-v", "--backend", backend]
        args += ["--poll-interval", POLL_INTERVAL, *options, "--"]
        args += [python, str(tree / "app" / "main.py"), str(self.starts)]
        self.process = spawn(args, cwd=tree, env=env or clean_environ())

    @property
    def output(self) -> str:
        return self.process.output

    def start_line(self) -> str:
        return next(line for line in self.output.splitlines() if ": using " in line)

    def records(self) -> list[dict[str, Any]]:
        try:
            return [json.loads(line) for line in self.starts.read_text().splitlines()]
        except FileNotFoundError:
            return []

    def ready(self, n: int) -> None:
        """Wait for start `n` and its ready line (the agent's report has arrived with it)."""
        wait_for(
            lambda: len(self.records()) >= n and self.output.count(": ready in ") >= n,
            message=f"start #{n} and its ready line\n{self.output}",
        )
        assert len(self.records()) == n, self.output

    def stays_at(self, n: int, duration_s: float = 1.0) -> None:
        assert stays(lambda: len(self.records()) == n, duration_s), self.output

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait() == 128 + signal.SIGTERM, self.output


def test_only_an_imported_module_restarts(spawn: Spawn, tmp_path: Path, backend: str) -> None:
    tree = make_tree(tmp_path / "tree")
    run = Run(spawn, tree, backend)
    run.ready(1)
    assert "; scope imports (agent on)" in run.start_line()

    write(tree / "other" / "tool.py", "TOOL = 2\n")
    wait_for(lambda: "other/tool.py changed; not imported by the program" in run.output)
    run.stays_at(1)

    write(tree / "app" / "blog" / "models.py", "MODELS = [1]\n")
    run.ready(2)
    assert "restarting: app/blog/models.py modified" in run.output

    # Django's autodiscovery: a new admin.py next to an imported module restarts.
    write(tree / "app" / "blog" / "admin.py", "ADMIN = []\n")
    run.ready(3)
    run.stays_at(3)
    run.stop()


def test_scope_tree_restarts_on_any_module(spawn: Spawn, tmp_path: Path, backend: str) -> None:
    tree = make_tree(tmp_path / "tree")
    run = Run(spawn, tree, backend, options=("--scope", "tree"))
    run.ready(1)
    assert "; scope tree (agent on)" in run.start_line()
    write(tree / "other" / "tool.py", "TOOL = 2\n")
    run.ready(2)
    run.stop()


def test_fixing_a_module_that_failed_to_import_restarts(
    spawn: Spawn, tmp_path: Path, backend: str
) -> None:
    tree = make_tree(tmp_path / "tree", extra_import="import app.broken")
    write(tree / "app" / "broken.py", "def oops(:\n")
    run = Run(spawn, tree, backend)
    wait_for(lambda: "exited with status 1; waiting for a change" in run.output)
    write(tree / "other" / "tool.py", "TOOL = 2\n")  # the crashed child reported: not in scope
    wait_for(lambda: "other/tool.py changed; not imported by the program" in run.output)
    write(tree / "app" / "broken.py", "def oops():\n    pass\n")
    run.ready(1)
    run.stop()


def sibling_venv(tmp_path: Path) -> tuple[str, Path]:
    """A venv (system site-packages, so no install needed) with a sibling package on its path
    through a .pth file, as `pip install -e` of a simple layout writes it; its python and the
    sibling's module."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=60,
    )
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    sibling = tmp_path / "sibling"
    write(sibling / "sibling_pkg" / "__init__.py", "")
    module = write(sibling / "sibling_pkg" / "core.py", "CORE = 1\n")
    (Path(purelib) / "__editable__.sibling.pth").write_text(f"{sibling}\n")
    assert sysconfig.get_paths()["purelib"] != purelib
    return str(python), module


def test_an_editable_sibling_outside_the_root_is_watched(
    spawn: Spawn, tmp_path: Path, backend: str
) -> None:
    python, module = sibling_venv(tmp_path)
    tree = make_tree(tmp_path / "tree", extra_import="import sibling_pkg.core")
    run = Run(spawn, tree, backend, python=python)
    run.ready(1)
    wait_for(lambda: f"watching {module}: imported from outside" in run.output)
    if backend == "watchman":  # and until the daemon watches it (stat: its next scan)
        wait_for(lambda: f" to {module.parent} since " in run.output, message="the subscription")
    write(module, "CORE = 2\n")
    run.ready(2)
    assert f"restarting: {module} " in run.output  # modified (stat may say added: it joined)
    run.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc")
def test_no_agent_runs_the_command_as_before(spawn: Spawn, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    env = clean_environ(WATCHRELOAD_AGENT="0")
    run = Run(spawn, tree, "stat", env=env)
    run.ready(1)  # the ready line comes from /proc for a command without the agent
    assert "; scope tree (agent off)" in run.start_line()
    environ = Path(f"/proc/{run.records()[0]['pid']}/environ").read_bytes().split(b"\0")
    assert not [v for v in environ if v.startswith((b"WATCHRELOAD_AGENT_", b"PYTHONPATH"))]
    write(tree / "other" / "tool.py", "TOOL = 2\n")
    run.ready(2)
    run.stop()


def test_a_command_that_is_not_python_gets_no_agent(spawn: Spawn, tmp_path: Path) -> None:
    env = clean_environ()
    env.pop("PYTHONPATH", None)
    args = [PYTHON, "-m", "watchreload", "--backend", "stat", "--", "env"]
    process = spawn(args, cwd=tmp_path, env=env)
    wait_for(lambda: "waiting for a change" in process.output)
    process.send_signal(signal.SIGINT)
    assert process.wait() == 0
    assert "; scope tree (not a Python command)" in process.output.splitlines()[0]
    assert "WATCHRELOAD_AGENT" not in process.output
    assert not any(line.startswith("PYTHONPATH=") for line in process.output.splitlines())
    assert os.environ.get("WATCHRELOAD_AGENT_SOCKET") is None
