"""The CLI: bad input gets one clear line and an exit code, never a traceback or a hang."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest

from tests.programs.harness import clean_environ, interrupt_at_teardown
from tests.support import PYTHON, Spawned, wait_for
from watchreload import __version__, errors
from watchreload.cli import Failure, handle_errors, main
from watchreload.errors import EXIT_INTERRUPTED, WatchreloadError

Spawn = Callable[..., Spawned]


@pytest.fixture
def spawn(spawn: Spawn) -> Iterator[Spawn]:
    """The conftest `spawn`, plus a SIGINT at teardown to whatever a failed test left running."""
    yield from interrupt_at_teardown(spawn)


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        ([], 2, "no command given; put the command to run after '--'"),
        (["-w", "srv/", "--", "true"], 2, "watch path 'srv/' does not exist; pass an existing"),
        (["-w", "app.py", "--", "true"], 2, "watch path 'app.py' is a file, not a directory"),
        (["-g", "src/[a", "--", "true"], 2, "glob 'src/[a' has an unclosed '['"),
        (["-i", "", "--", "true"], 2, "glob '' is invalid"),
        (["--debounce", "-1", "--", "true"], 2, "debounce -1 is invalid; pass a number of"),
        (["--stop-timeout", "-3", "--", "true"], 2, "stop timeout -3 is invalid"),
        (["--poll-interval", "0", "--", "true"], 2, "poll interval 0 is invalid"),
        (["--stop-signal", "SIGNOPE", "--", "true"], 2, "stop signal 'SIGNOPE' is unknown"),
        (["--", "no-such-command-xyz"], 127, "command 'no-such-command-xyz' not found on PATH"),
        (["--", "./app.py"], 126, "command './app.py' is not executable"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("WATCHRELOAD_")]:
        monkeypatch.delenv(name)
    (tmp_path / "app.py").write_text("print('not executable')\n")
    exit_code, output = run_main(capsys, *argv)
    assert exit_code == code
    lines = output.splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("watchreload: error: ")
    assert message in lines[0]


def test_a_command_that_cannot_be_executed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "noshebang").write_bytes(b"\x7fELF but not really")
    (tmp_path / "noshebang").chmod(0o755)
    exit_code, output = run_main(capsys, "--backend=stat", "--", "./noshebang")
    assert exit_code == 126
    assert output.splitlines()[-1] == (
        "watchreload: error: command './noshebang' cannot be started (Exec format error); "
        "run it through its interpreter"
    )
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "argv",
    [["--bogus", "--", "true"], ["--debounce", "soon", "--", "true"], ["--backend", "x", "true"]],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    exit_code, output = run_main(capsys, *argv)
    assert exit_code == 2
    assert "Error:" in output and "Traceback" not in output


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_main(capsys, "--version") == (0, f"watchreload, version {__version__}\n")
    code, output = run_main(capsys, "--help")
    assert code == 0
    for option in (
        "--backend [auto|watchman|stat]",
        "--watch",
        "--glob",
        "--ignore",
        "--debounce",
        "--stop-signal",
        "--stop-timeout",
        "--poll-interval",
        "--shell",
        "--clear",
        "--no-default-ignores",
        "-- COMMAND [ARGS]...",
    ):
        assert option in output


ERROR_CLASSES = [
    value
    for value in vars(errors).values()
    if isinstance(value, type) and issubclass(value, WatchreloadError)
]


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_goes_through_handle_errors_with_its_exit_code(
    capsys: pytest.CaptureFixture[str], error_class: type[WatchreloadError]
) -> None:
    with pytest.raises(Failure) as info, handle_errors():
        raise error_class("what, why, and the fix")
    assert info.value.exit_code == error_class.exit_code
    info.value.show()
    line = capsys.readouterr().err
    assert line.startswith("watchreload: error: what, why, and the fix")
    assert line.count("\n") == 1


def test_ctrl_c_before_the_child_starts_is_130_and_silent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(Failure) as info, handle_errors():
        raise click.exceptions.Abort()  # what click makes of a KeyboardInterrupt
    assert info.value.exit_code == EXIT_INTERRUPTED
    info.value.show()
    assert capsys.readouterr().err == ""


def cli(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "watchreload", *argv],
        cwd=tmp_path,
        env=clean_environ(**env),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_requested_watchman_that_is_unavailable_is_an_error(tmp_path: Path) -> None:
    result = cli(
        tmp_path,
        "--backend=watchman",
        "--watchman-timeout=1",
        "--",
        PYTHON,
        "-c",
        "pass",
        WATCHMAN_SOCK=str(tmp_path / "no-daemon.sock"),
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("watchreload: error: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    # The library's message speaks of the stat backend; the CLI adds the flag.
    assert result.stderr.endswith("or use the stat backend (--backend=stat)\n")


def test_command_not_found_through_the_entry_point(tmp_path: Path) -> None:
    result = cli(tmp_path, "--", "no-such-command-xyz", "--flag")
    assert result.returncode == 127
    assert result.stderr == (
        "watchreload: error: command 'no-such-command-xyz' not found on PATH; "
        "check the spelling or pass its full path\n"
    )


def test_pyproject_errors_through_the_entry_point(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.watchreload]\nwatch = ['srv']\n")
    result = cli(tmp_path, "--", "true")
    assert result.returncode == 2
    assert "pyproject.toml [tool.watchreload] watch: watch path 'srv' does not exist" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_start_line_names_the_backend_and_why(spawn: Spawn, tmp_path: Path) -> None:
    env = clean_environ(WATCHMAN_SOCK=str(tmp_path / "no-daemon.sock"))
    process = spawn(
        [PYTHON, "-m", "watchreload", "--", PYTHON, "-c", "pass"], cwd=tmp_path, env=env
    )
    wait_for(lambda: "waiting for a change" in process.output)
    process.send_signal(signal.SIGINT)
    assert process.wait() == 0
    lines = process.output.splitlines()
    assert lines[0].startswith("watchreload: using stat backend (Watchman unavailable: ")
    assert lines[0].endswith("; watching . for **/*.py; scope imports (agent on)")
    assert not any("StatReloader" in line for line in lines)  # the reason is said once


def test_shell_mode_and_settings_from_the_environment(spawn: Spawn, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    env = clean_environ(WATCHRELOAD_BACKEND="stat", WATCHRELOAD_SHELL="1")
    args = [PYTHON, "-m", "watchreload", "--", f"echo one > {marker} && echo two >> {marker}"]
    process = spawn(args, cwd=tmp_path, env=env)
    wait_for(lambda: "exited with status 0" in process.output)
    assert marker.read_text() == "one\ntwo\n"
    assert "using stat backend (requested)" in process.output
    process.send_signal(signal.SIGINT)
    assert process.wait() == 0


def test_clear_clears_the_terminal_before_the_restart_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("")
    controller, terminal = pty.openpty()
    args = [PYTHON, "-m", "watchreload", "--backend=stat", "--poll-interval=0.1", "--clear"]
    process = subprocess.Popen(
        [*args, "--", PYTHON, "-c", "import time; print('child', flush=True); time.sleep(60)"],
        cwd=tmp_path,
        env=clean_environ(),
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    seen = bytearray()

    def read_until(text: bytes) -> bool:
        while text not in seen:
            ready, _, _ = select.select([controller], [], [], 0.05)
            if not ready:
                return False
            seen.extend(os.read(controller, 65536))
        return True

    try:
        wait_for(lambda: read_until(b"child"), message="the first start")
        (tmp_path / "app.py").write_text("x = 1\n")
        wait_for(lambda: read_until(b"restarting: app.py modified"), message="the restart")
        assert b"\x1b[2J" in seen
        assert seen.index(b"\x1b[2J") < seen.index(b"restarting: app.py modified")
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)
        os.close(controller)
