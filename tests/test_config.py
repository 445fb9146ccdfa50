"""Config: CLI, then WATCHRELOAD_* environment, then [tool.watchreload], then the default."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from watchreload.config import Config, load_config
from watchreload.errors import ConfigError, WatchPathError
from watchreload.spec import DEFAULT_IGNORE_PATTERNS, DEFAULT_INCLUDE_GLOBS
from watchreload.values import parse_signal

COMMAND = ("python", "app.py")


def load(cwd: Path, env: dict[str, str] | None = None, **cli: Any) -> Config:
    return load_config({"command": COMMAND, **cli}, environ=env or {}, cwd=cwd)


def pyproject(directory: Path, table: str) -> Path:
    path = directory / "pyproject.toml"
    path.write_text(f"[project]\nname = 'x'\n\n[tool.watchreload]\n{table}\n")
    return path


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.command == COMMAND
    assert config.roots == (tmp_path,)
    assert config.include_globs == DEFAULT_INCLUDE_GLOBS
    assert config.ignore_patterns == DEFAULT_IGNORE_PATTERNS
    assert config.backend == "auto"
    assert (config.debounce_ms, config.debounce_max_ms) == (20, 2000)
    assert config.stop_signal == signal.SIGTERM
    assert config.stop_timeout_s == 5
    assert config.poll_interval_s == 1.0
    assert not config.shell and not config.clear
    assert config.pyproject is None


def test_precedence_cli_then_env_then_pyproject_then_default(tmp_path: Path) -> None:
    pyproject(tmp_path, "debounce = 10\nstop-timeout = 1\npoll-interval = 0.5\nbackend = 'stat'")
    env = {"WATCHRELOAD_DEBOUNCE": "20", "WATCHRELOAD_STOP_TIMEOUT": "2"}
    config = load(tmp_path, env, debounce=30.0)
    assert config.debounce_ms == 30  # CLI
    assert config.stop_timeout_s == 2  # environment
    assert config.poll_interval_s == 0.5  # pyproject.toml
    assert config.backend == "stat"
    assert config.debounce_max_ms == 2000  # default
    assert config.pyproject == tmp_path / "pyproject.toml"


def test_nearest_pyproject_is_found_upwards_and_its_paths_are_relative_to_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "deep" / "er").mkdir(parents=True)
    pyproject(tmp_path, "watch = ['src']\nglob = ['**/*.py', '**/*.html']\n")
    config = load(tmp_path / "deep" / "er")
    assert config.roots == (tmp_path / "src",)
    assert config.include_globs == ("**/*.py", "**/*.html")


def test_the_nearest_pyproject_wins_even_without_a_table(tmp_path: Path) -> None:
    pyproject(tmp_path, "debounce = 10")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text("[project]\nname = 'sub'\n")
    assert load(tmp_path / "sub").debounce_ms == 20  # the default


def test_list_settings_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    env = {
        "WATCHRELOAD_WATCH": "a:b",
        "WATCHRELOAD_GLOB": "**/*.py, **/*.txt",
        "WATCHRELOAD_IGNORE": "build",
        "WATCHRELOAD_SHELL": "yes",
        "WATCHRELOAD_STOP_SIGNAL": "int",
    }
    config = load(tmp_path, env)
    assert config.roots == (tmp_path / "a", tmp_path / "b")
    assert config.include_globs == ("**/*.py", "**/*.txt")
    assert config.ignore_patterns == (*DEFAULT_IGNORE_PATTERNS, "build")
    assert config.shell
    assert config.stop_signal == signal.SIGINT


def test_extra_ignores_extend_the_defaults_unless_turned_off(tmp_path: Path) -> None:
    assert load(tmp_path, ignore=("*.log",)).ignore_patterns == (*DEFAULT_IGNORE_PATTERNS, "*.log")
    config = load(tmp_path, ignore=("*.log",), default_ignores=False)
    assert config.ignore_patterns == ("*.log",)
    assert load(tmp_path, {"WATCHRELOAD_DEFAULT_IGNORES": "0"}).ignore_patterns == ()
    pyproject(tmp_path, "default_ignores = false")  # '_' works as well as '-'
    assert load(tmp_path).ignore_patterns == ()


@pytest.mark.parametrize("text", ["TERM", "SIGTERM", "sigterm", "15", 15])
def test_stop_signal_spellings(text: object) -> None:
    assert parse_signal(text) == signal.SIGTERM


@pytest.mark.parametrize(
    ("cli", "env", "message"),
    [
        ({"debounce": -1.0}, {}, "--debounce: debounce -1 is invalid; pass a number of milli"),
        ({}, {"WATCHRELOAD_STOP_TIMEOUT": "soon"}, "WATCHRELOAD_STOP_TIMEOUT: stop timeout 'soon'"),
        ({}, {"WATCHRELOAD_POLL_INTERVAL": "0"}, "poll interval '0' is invalid; pass a number of"),
        ({}, {"WATCHRELOAD_DEBOUNCE_MAX": "nan"}, "debounce cap 'nan' is invalid"),
        ({"stop_signal": "SIGFOO"}, {}, "stop signal 'SIGFOO' is unknown; pass a name such as"),
        ({}, {"WATCHRELOAD_STOP_SIGNAL": "0"}, "stop signal '0' is unknown"),
        ({}, {"WATCHRELOAD_BACKEND": "inotify"}, "backend 'inotify' is unknown; pass one of auto"),
        ({}, {"WATCHRELOAD_SHELL": "maybe"}, "'maybe' is not a boolean; pass true or false"),
        ({"glob": ("src/[a",)}, {}, "--glob: glob 'src/[a' has an unclosed '['"),
        ({"ignore": ("/abs",)}, {}, "--ignore: glob '/abs' is invalid"),
        ({"command": ()}, {}, "no command given; put the command to run after '--'"),
    ],
)
def test_invalid_values_are_named_with_their_source_and_fix(
    tmp_path: Path, cli: dict[str, Any], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, env, **cli)
    assert message in str(info.value)


def test_watch_path_must_be_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(WatchPathError, match=r"watch path 'srv/' does not exist; pass an existing"):
        load(tmp_path, watch=("srv/",))
    (tmp_path / "app.py").write_text("")
    with pytest.raises(WatchPathError, match=r"'app.py' is a file, not a directory"):
        load(tmp_path, watch=("app.py",))
    pyproject(tmp_path, "watch = ['missing']")
    with pytest.raises(WatchPathError, match=r"pyproject.toml \[tool.watchreload\] watch: "):
        load(tmp_path)


def test_unknown_pyproject_key_is_an_error(tmp_path: Path) -> None:
    pyproject(tmp_path, "debounse = 10")
    with pytest.raises(ConfigError, match=r"key 'debounse' is unknown; use one of watch, glob"):
        load(tmp_path)


def test_pyproject_type_errors(tmp_path: Path) -> None:
    pyproject(tmp_path, "watch = 3")
    with pytest.raises(ConfigError, match=r"watch = 3 is invalid; pass a list of strings"):
        load(tmp_path)
    pyproject(tmp_path, "clear = 'yes please'")
    with pytest.raises(ConfigError, match=r"'yes please' is not a boolean"):
        load(tmp_path)
    pyproject(tmp_path, "stop-timeout = true")
    with pytest.raises(ConfigError, match=r"stop timeout True is invalid"):
        load(tmp_path)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.watchreload\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml is not valid TOML"):
        load(tmp_path)


def test_unknown_environment_variables_are_not_errors(tmp_path: Path) -> None:
    load(tmp_path, {"WATCHRELOAD_CHANGES": "[]", "WATCHRELOAD_SOMETHING": "x"})
