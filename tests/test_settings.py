"""The settings table: the README's tables, the CLI's options and every source's error messages
all come from watchreload.settings.SETTINGS."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click
import pytest

from watchreload.cli import command, main
from watchreload.settings import SETTINGS, Setting

README = Path(__file__).parent.parent / "README.md"
OPTIONS_HEADER = "| option | meaning | default |"
SETTINGS_HEADER = "| setting | environment variable | pyproject.toml | library mode |"


def readme_table(header: str) -> list[str]:
    """The rows of the README table that starts with `header` (its separator line skipped)."""
    lines = README.read_text().splitlines()
    start = lines.index(header) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def option_cell(setting: Setting[object]) -> str:
    if setting.kind == "switch":
        return f"`--[no-]{setting.key}`"
    if setting.kind == "choice":
        escaped_choices = "\\|".join(setting.choices)  # a '|' would end the markdown cell
        return f"`{setting.flag} [{escaped_choices}]`"
    flags = "/".join(flag for flag in (setting.short_flag, setting.flag) if flag)
    cell = f"`{flags} {setting.metavar}`"
    return f"{cell} (repeatable)" if setting.kind == "list" else cell


def default_cell(setting: Setting[object]) -> str:
    default = setting.default
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple):
        return ", ".join(f"`{item}`" for item in default) or "none"
    if default == "":
        return "none"
    return f"`{default}`" if isinstance(default, str) else str(default)


def toml_cell(setting: Setting[object]) -> str:
    default = setting.default
    if isinstance(default, bool):
        value = "true" if default else "false"
    elif isinstance(default, str | tuple):
        value = json.dumps(list(default) if isinstance(default, tuple) else default)
    else:
        value = str(default)
    return f"`{setting.key} = {value}`"


def env_cell(setting: Setting[object]) -> str:
    if setting.kind != "list":
        return f"`{setting.env_var}`"
    return f"`{setting.env_var}` (`a{setting.env_separator}b`)"


def meaning_cell(setting: Setting[object]) -> str:
    """The help text, its 'quoted' words as code (an apostrophe inside a word is left alone)."""
    return re.sub(r"(?<!\w)'([^'\s][^']*)'(?!\w)", r"`\1`", setting.help)


def expected_option_rows() -> list[str]:
    return [f"| {option_cell(s)} | {meaning_cell(s)} | {default_cell(s)} |" for s in SETTINGS]


def expected_settings_rows() -> list[str]:
    return [
        f"| `{s.key}` | {env_cell(s)} | {toml_cell(s)} | {'yes' if s.library else 'no'} |"
        for s in SETTINGS
    ]


def test_the_readme_options_table_is_the_settings_table() -> None:
    rows = readme_table(OPTIONS_HEADER)
    expected = expected_option_rows()
    assert rows[: len(expected)] == expected, "README options table, expected:\n" + "\n".join(
        expected
    )
    flags = {setting.flag for setting in SETTINGS} | {f"--[no-]{s.key}" for s in SETTINGS}
    for extra_row in rows[len(expected) :]:  # -v/-q, --version: command-line only
        option = extra_row.split("|")[1]
        assert not any(f"{flag} " in option or f"{flag}`" in option for flag in flags), extra_row


def test_the_readme_settings_table_is_the_settings_table() -> None:
    expected = expected_settings_rows()
    assert readme_table(SETTINGS_HEADER) == expected, "README settings table, expected:\n" + (
        "\n".join(expected)
    )


def test_no_docstring_repeats_a_table_of_the_settings() -> None:
    import watchreload.cli
    import watchreload.config

    for module in (watchreload.config, watchreload.cli):
        assert "WATCHRELOAD_DEBOUNCE" not in (module.__doc__ or ""), module.__name__


def test_every_setting_is_an_option_with_its_default_shown() -> None:
    options = {param.name: param for param in command.params if isinstance(param, click.Option)}
    for setting in SETTINGS:
        option = options[setting.name]
        assert setting.flag in option.opts
        assert option.show_default is True
        assert "[default:" not in setting.help  # click writes it
        assert setting.default_value is not None  # the default passes its own parser


def isolated(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    monkeypatch.chdir(directory)
    for name in [n for n in os.environ if n.startswith("WATCHRELOAD_")]:
        monkeypatch.delenv(name)


BAD_NUMBERS = [
    ("debounce", "debounce 'abc' is invalid; pass a number of milliseconds 0 or more"),
    ("debounce-max", "debounce cap 'abc' is invalid; pass a number of milliseconds 0 or more"),
    ("stop-timeout", "stop timeout 'abc' is invalid; pass a number of seconds 0 or more"),
    ("poll-interval", "poll interval 'abc' is invalid; pass a number of seconds above 0"),
    ("watchman-timeout", "Watchman timeout 'abc' is invalid; pass a number of seconds above 0"),
]


@pytest.mark.parametrize(("key", "problem"), BAD_NUMBERS)
def test_each_source_is_named_in_the_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    key: str,
    problem: str,
) -> None:
    isolated(monkeypatch, tmp_path)
    env_var = "WATCHRELOAD_" + key.replace("-", "_").upper()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.watchreload]\n{key} = 'abc'\n")
    assert main(["--", "true"]) == 2
    assert capsys.readouterr().err == (
        f"watchreload: error: {pyproject} [tool.watchreload] {key}: {problem}\n"
    )
    monkeypatch.setenv(env_var, "abc")  # the environment wins over the file
    assert main(["--", "true"]) == 2
    assert capsys.readouterr().err == f"watchreload: error: {env_var}: {problem}\n"
    # The command line wins over both; click's float type rejects 'abc' itself, so use -1.
    assert main([f"--{key}", "-1", "--", "true"]) == 2
    negative = problem.replace("'abc'", "-1")
    assert capsys.readouterr().err == f"watchreload: error: --{key}: {negative}\n"


def test_an_option_typed_with_its_default_value_still_wins(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    isolated(monkeypatch, tmp_path)
    monkeypatch.setenv("WATCHRELOAD_DEBOUNCE", "abc")
    monkeypatch.setenv("WATCHRELOAD_SHELL", "maybe")
    assert main(["--", "true"]) == 2  # not typed: the environment's bad value is read
    assert "WATCHRELOAD_DEBOUNCE: debounce 'abc' is invalid" in capsys.readouterr().err
    # Typed, even as the default, the option wins: the settings pass and the command is looked
    # up next (127: not found), so the bad variables were never read.
    argv = ["--debounce", "50", "--no-shell", "--", "no-such-command-xyz"]
    assert main(argv) == 127
    assert "command 'no-such-command-xyz' not found" in capsys.readouterr().err
