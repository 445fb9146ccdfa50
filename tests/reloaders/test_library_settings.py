"""Library mode reads the command line's settings from the environment and pyproject.toml, with
the same checks and messages; an argument passed to get_reloader() wins."""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.programs.harness import clean_environ
from tests.support import PYTHON, Spawned, wait_for
from watchreload.cli import main
from watchreload.errors import ConfigError
from watchreload.reloaders import StatReloader, get_reloader
from watchreload.spec import DEFAULT_IGNORE_PATTERNS


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty project as the current directory, with no WATCHRELOAD_* from the test's shell."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("WATCHRELOAD_")]:
        monkeypatch.delenv(name)
    return tmp_path


def write_pyproject(directory: Path, table: str) -> Path:
    path = directory / "pyproject.toml"
    path.write_text(f"[project]\nname = 'app'\n\n[tool.watchreload]\n{table}\n")
    return path


def test_settings_from_pyproject(project: Path) -> None:
    write_pyproject(
        project,
        "backend = 'stat'\npoll-interval = 0.25\ndebounce = 120\ndebounce-max = 900\n"
        "ignore = ['generated']\ndefault-ignores = false",
    )
    (project / "sub").mkdir()
    os.chdir(project / "sub")  # the nearest pyproject.toml is found upwards, as for the CLI
    reloader = get_reloader(watch_modules=False)
    assert isinstance(reloader, StatReloader)
    assert reloader.reason == "requested"
    assert reloader.interval_s == 0.25
    assert (reloader.batcher.debounce_s, reloader.batcher.debounce_max_s) == (0.12, 0.9)
    assert reloader.ignore.patterns == ("generated",)


def test_the_environment_wins_over_pyproject(
    monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    write_pyproject(project, "backend = 'stat'\ndebounce = 120\nignore = ['generated']")
    monkeypatch.setenv("WATCHRELOAD_DEBOUNCE", "300")
    monkeypatch.setenv("WATCHRELOAD_IGNORE", "build,dist")
    reloader = get_reloader(watch_modules=False)
    assert reloader.batcher.debounce_s == 0.3
    assert reloader.ignore.patterns == (*DEFAULT_IGNORE_PATTERNS, "build", "dist")


def test_an_argument_wins_over_the_settings(monkeypatch: pytest.MonkeyPatch, project: Path) -> None:
    write_pyproject(project, "backend = 'watchman'\npoll-interval = 0.25\nignore = ['generated']")
    monkeypatch.setenv("WATCHRELOAD_DEBOUNCE", "not a number")  # never read: passed below
    reloader = get_reloader(
        "stat", poll_interval_s=2.0, debounce_ms=10, ignore_patterns=(), watch_modules=False
    )
    assert isinstance(reloader, StatReloader)
    assert reloader.interval_s == 2.0
    assert reloader.batcher.debounce_s == 0.01
    assert reloader.ignore.patterns == ()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WATCHRELOAD_POLL_INTERVAL", "inf"),
        ("WATCHRELOAD_POLL_INTERVAL", "0"),
        ("WATCHRELOAD_DEBOUNCE", "abc"),
        ("WATCHRELOAD_WATCHMAN_TIMEOUT", "nan"),
        ("WATCHRELOAD_BACKEND", "inotify"),
    ],
)
def test_an_invalid_value_is_the_same_error_as_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    project: Path,
    variable: str,
    value: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        get_reloader(watch_modules=False)
    assert str(info.value).startswith(f"{variable}: ")
    assert main(["--", "true"]) == 2
    assert capsys.readouterr().err == f"watchreload: error: {info.value}\n"


def test_an_invalid_pyproject_value_is_the_same_error_as_on_the_command_line(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    pyproject = write_pyproject(project, "debounce = inf")
    with pytest.raises(ConfigError) as info:
        get_reloader(watch_modules=False)
    assert str(info.value) == (
        f"{pyproject} [tool.watchreload] debounce: debounce inf is invalid; "
        "pass a number of milliseconds 0 or more"
    )
    assert main(["--", "true"]) == 2
    assert capsys.readouterr().err == f"watchreload: error: {info.value}\n"


PROGRAM = textwrap.dedent(
    """
    import os
    import threading

    from watchreload import autoreload_started, run_with_reloader


    @autoreload_started.connect
    def record_backend(sender, **kwargs):
        with open("backends.txt", "a") as f:
            f.write(f"{type(sender).__name__} {sender.interval_s}\\n")


    def main():
        with open("starts.txt", "a") as f:
            f.write(f"{os.getpid()}\\n")
        threading.Event().wait()


    if __name__ == "__main__":
        run_with_reloader(main)
    """
)


def test_run_with_reloader_takes_its_backend_from_pyproject(
    spawn: Callable[..., Spawned], tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(PROGRAM)
    write_pyproject(tmp_path, "backend = 'stat'\npoll-interval = 0.05\ndebounce = 20")
    process = spawn([PYTHON, "app.py"], cwd=tmp_path, env=clean_environ())
    starts = tmp_path / "starts.txt"
    wait_for(lambda: starts.exists() and len(starts.read_text().split()) == 1, message="a start")
    assert (tmp_path / "backends.txt").read_text() == "StatReloader 0.05\n"
    (tmp_path / "app.py").write_text(PROGRAM + "\n# edited\n")
    wait_for(lambda: len(starts.read_text().split()) == 2, message="a restart after an edit")
    process.send_signal(signal.SIGTERM)
    assert process.wait() == 0


def test_run_with_reloader_rejects_an_infinite_poll_interval(
    spawn: Callable[..., Spawned], tmp_path: Path
) -> None:
    (tmp_path / "app.py").write_text(PROGRAM)
    env = clean_environ(WATCHRELOAD_POLL_INTERVAL="inf")
    process = spawn([PYTHON, "app.py"], cwd=tmp_path, env=env)
    assert process.wait() == 1
    assert (
        "ConfigError: WATCHRELOAD_POLL_INTERVAL: poll interval 'inf' is invalid; "
        "pass a number of seconds above 0"
    ) in process.output
    assert not (tmp_path / "starts.txt").exists()
