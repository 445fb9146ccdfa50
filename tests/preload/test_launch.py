"""launch.py: reading a command line as CPython does (pure, but for one #! file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import PYTHON
from watchreload.preload.launch import Launch, parse_command, script_problem


def test_a_script_with_flags() -> None:
    parsed = parse_command([PYTHON, "-X", "dev", "-Wall", "-uB", "app.py", "-x"], "/srv")
    assert isinstance(parsed, Launch)
    assert parsed.flags == ("-Xdev", "-Wall", "-u", "-B")
    assert (parsed.mode, parsed.target, parsed.args) == ("script", "app.py", ("-x",))
    assert parsed.argv() == ["app.py", "-x"]
    assert parsed.orig_argv == (PYTHON, "-X", "dev", "-Wall", "-uB", "app.py", "-x")


def test_a_module() -> None:
    parsed = parse_command([PYTHON, "-m", "uvicorn", "app:app"], "/srv")
    assert isinstance(parsed, Launch)
    assert (parsed.mode, parsed.target, parsed.argv()) == ("module", "uvicorn", ["-m", "app:app"])
    assert parsed.path0("/srv") == "/srv"


def test_isolated_mode_prepends_nothing() -> None:
    parsed = parse_command([PYTHON, "-I", "app.py"], "/srv")
    assert isinstance(parsed, Launch) and parsed.path0("/srv") is None


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        ([PYTHON, "-c", "pass"], "-c code"),
        ([PYTHON, "-i", "app.py"], "interactive"),
        ([PYTHON], "stdin"),
        ([PYTHON, "-"], "stdin"),
        (["/bin/sh", "-c", "x"], "not a Python program"),
        ([], "empty"),
    ],
)
def test_what_the_template_does_not_run(argv: list[str], reason: str) -> None:
    parsed = parse_command(argv, "/srv")
    assert isinstance(parsed, str) and reason in parsed


def test_a_console_script_through_its_shebang(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text(f"#!{PYTHON}\nprint('hi')\n")
    script.chmod(0o755)
    parsed = parse_command([str(script), "run"], str(tmp_path))
    assert isinstance(parsed, Launch)
    assert (parsed.interpreter, parsed.target, parsed.args) == (PYTHON, str(script), ("run",))
    assert parsed.orig_argv == (PYTHON, str(script), "run")
    assert parsed.path0(str(tmp_path)) == str(tmp_path.resolve())
    assert script_problem(parsed, str(tmp_path)) is None
    assert "not a file" in str(script_problem(Launch(PYTHON, (), "script", "x", (), ()), "/"))
