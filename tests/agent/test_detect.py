"""Which commands run Python: interpreters by name or by what they resolve to, and #! scripts."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.support import PYTHON
from watchreload.agent.detect import is_python_command, shebang_interpreter


def script(directory: Path, name: str, text: str, executable: bool = True) -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(0o755 if executable else 0o644)
    return path


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH directory: python3 (a symlink to ours) and console scripts as pip writes them."""
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "python3").symlink_to(PYTHON)
    venv_python = directory / "python"
    venv_python.symlink_to(PYTHON)
    for name in ("uvicorn", "flask", "gunicorn", "pytest"):
        script(directory, name, f"#!{venv_python}\nimport sys\nfrom {name} import main\n")
    # pip's form when the interpreter's path is too long for a #! line
    script(directory, "longpath", f"#!/bin/sh\n'''exec' \"{venv_python}\" \"$0\" \"$@\"\n' '''\n")
    script(directory, "node", "#!/bin/sh\necho node\n")
    script(directory, "app", "#!/usr/bin/env -S python3 -u\nprint(1)\n")
    script(directory, "tool", "#!/usr/bin/env FOO=1 python3\nprint(1)\n")
    script(directory, "noshebang", "print(1)\n")
    return directory


def test_interpreters_by_name_and_by_what_they_resolve_to(bin_dir: Path) -> None:
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    assert is_python_command([PYTHON, "app.py"])
    assert is_python_command([sys.executable, "-m", "http.server"])
    assert is_python_command(["python3", "-m", "http.server"], path=path)
    assert is_python_command([str(bin_dir / "python"), "app.py"])  # a virtualenv's python
    renamed = bin_dir / "server"
    renamed.symlink_to(PYTHON)  # any name, if it resolves to an interpreter
    assert is_python_command([str(renamed)])
    for name in ("python", "python3.12", "python3.13t", "pypy3"):
        assert is_python_command([f"/nonexistent/{name}", "x.py"]), name


def test_console_scripts_whose_shebang_names_python(bin_dir: Path) -> None:
    path = str(bin_dir)
    for name in ("uvicorn", "flask", "gunicorn", "pytest", "longpath", "app", "tool"):
        assert is_python_command([name, "--flag"], path=path), name
    real_pytest = shutil.which("pytest", path=str(Path(PYTHON).parent))
    assert real_pytest is not None
    assert is_python_command([real_pytest])


def test_an_executable_manage_py(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manage = script(tmp_path, "manage.py", "#!/usr/bin/env python3\nimport sys\n")
    assert is_python_command([str(manage), "runserver"])
    monkeypatch.chdir(tmp_path)
    assert is_python_command(["./manage.py", "runserver"])


def test_non_python_commands(bin_dir: Path) -> None:
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    assert not is_python_command(["sh", "-c", "python app.py"], path=path)
    assert not is_python_command(["true"], path=path)
    assert not is_python_command(["node", "app.js"], path=str(bin_dir))
    assert not is_python_command([str(bin_dir / "noshebang")])
    assert not is_python_command(["no-such-program-anywhere"], path=path)
    assert not is_python_command([], path=path)
    assert not is_python_command(["python3-config"], path=path)


def test_shell_commands_are_never_detected(bin_dir: Path) -> None:
    assert not is_python_command([PYTHON, "app.py"], shell=True)


def test_env_runs_the_program_after_its_assignments(bin_dir: Path) -> None:
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    assert is_python_command(["env", "DEBUG=1", "-u", "HOME", "python3", "app.py"], path=path)
    assert not is_python_command(["env", "DEBUG=1", "node", "app.js"], path=str(bin_dir))
    assert not is_python_command(["env", "DEBUG=1"], path=path)


def test_shebang_interpreter_reads_only_the_first_lines(tmp_path: Path) -> None:
    assert shebang_interpreter(str(script(tmp_path, "a", "#!/opt/py/bin/python3.12 -u\n"))) == (
        "/opt/py/bin/python3.12"
    )
    assert shebang_interpreter(str(script(tmp_path, "b", "#!/usr/bin/env python3\n"))) == "python3"
    assert shebang_interpreter(str(script(tmp_path, "c", "#!\n"))) is None
    assert shebang_interpreter(str(tmp_path / "missing")) is None
    assert shebang_interpreter("/bin/true") is None  # an ELF binary
