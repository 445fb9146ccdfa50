"""Where a setting's value comes from: the command line, the environment, pyproject.toml.

`Settings.resolve()` takes a value whole from the first source that sets it (settings.py lists
the order and the table) and gives it with its `Origin`, whose `blame()` prefixes errors with
where the value came from.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from watchreload.errors import ConfigError, WatchPathError
from watchreload.settings import (
    BY_KEY,
    DEFAULT_IGNORES,
    IGNORE,
    PYPROJECT_TABLE,
    WATCHMAN_TIMEOUT,
    Setting,
)
from watchreload.spec import DEFAULT_IGNORE_PATTERNS

T = TypeVar("T")
DJANGO_WATCHMAN_TIMEOUT_ENV = "DJANGO_WATCHMAN_TIMEOUT"  # Django's, read by watchman_timeout_s()


@dataclass(frozen=True)
class Origin:
    """Where a value came from: its error messages start with `label`, and a relative path in it
    is relative to `base`."""

    label: str
    base: Path

    @contextlib.contextmanager
    def blame(self) -> Iterator[None]:
        """Prefix the label to a ConfigError or WatchPathError raised inside, keeping its class."""
        try:
            yield
        except (ConfigError, WatchPathError) as exc:
            raise type(exc)(f"{self.label}: {exc}") from exc


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in `start` or one of its parents."""
    candidates = (directory / "pyproject.toml" for directory in (start, *start.parents))
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def read_pyproject(path: Path) -> dict[str, object]:
    """The `[tool.watchreload]` table of `path`, by setting key (`debounce_max` read as
    `debounce-max`); unknown keys and values of the wrong shape are errors."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix the file") from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path} ({exc.strerror or exc}); fix its permissions"
        ) from exc
    tool = data.get("tool", {})
    table = tool.get("watchreload", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {PYPROJECT_TABLE} must be a table; see the README for its keys")
    values: dict[str, object] = {}
    for written_key, value in table.items():
        setting = BY_KEY.get(written_key.replace("_", "-"))
        if setting is None:
            raise ConfigError(
                f"{path}: {PYPROJECT_TABLE} key {written_key!r} is unknown; use one of "
                f"{', '.join(BY_KEY)}"
            )
        if setting.kind == "list":
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(
                    f"{path}: {PYPROJECT_TABLE} {written_key} = {value!r} is invalid; pass a "
                    "list of strings"
                )
        values[setting.key] = value
    return values


def _split_env(setting: Setting[Any], raw: str) -> object:
    if setting.kind != "list":
        return raw
    if setting.env_separator == os.pathsep:  # paths: spaces may belong to a name
        return [item for item in raw.split(os.pathsep) if item]
    return [item.strip() for item in raw.split(setting.env_separator) if item.strip()]


class Settings:
    """The values given for the settings, from the command line (or explicit arguments), the
    environment and the nearest pyproject.toml; each is parsed when it is asked for.

    `given` maps a setting's name to its value, None (or an empty tuple) meaning not given.
    """

    def __init__(
        self,
        given: Mapping[str, object] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.given = given or {}
        self.environ = os.environ if environ is None else environ
        self.cwd = Path.cwd() if cwd is None else cwd
        self.pyproject = find_pyproject(self.cwd)
        self.from_file = read_pyproject(self.pyproject) if self.pyproject is not None else {}

    def raw(self, setting: Setting[Any]) -> tuple[object, Origin]:
        """The value as written, and where it came from (the default's origin is 'default')."""
        value = self.given.get(setting.name)
        if value is not None and value != ():
            return value, Origin(setting.flag, self.cwd)
        env_value = self.environ.get(setting.env_var)
        if env_value is not None:
            return _split_env(setting, env_value), Origin(setting.env_var, self.cwd)
        if self.pyproject is not None and setting.key in self.from_file:
            label = f"{self.pyproject} {PYPROJECT_TABLE} {setting.key}"
            return self.from_file[setting.key], Origin(label, self.pyproject.parent)
        return setting.default, Origin(f"the default {setting.key}", self.cwd)

    def is_set(self, setting: Setting[Any]) -> bool:
        """True when a source gives `setting` a value, False when it has its default."""
        return not self.raw(setting)[1].label.startswith("the default ")

    def resolve(self, setting: Setting[T]) -> tuple[T, Origin]:
        value, origin = self.raw(setting)
        with origin.blame():
            return setting.parse(value), origin

    def get(self, setting: Setting[T]) -> T:
        return self.resolve(setting)[0]

    def ignore_patterns(self) -> tuple[str, ...]:
        """The default ignores (unless `default-ignores` is false), then `ignore`."""
        defaults = DEFAULT_IGNORE_PATTERNS if self.get(DEFAULT_IGNORES) else ()
        return (*defaults, *self.get(IGNORE))

    def watchman_timeout_s(self) -> float:
        """`watchman-timeout`, where Django's DJANGO_WATCHMAN_TIMEOUT stands in for every source
        but an explicit argument when it is set (Django's WatchmanReloader reads it)."""
        raw = self.environ.get(DJANGO_WATCHMAN_TIMEOUT_ENV)
        if raw is None or self.given.get(WATCHMAN_TIMEOUT.name) is not None:
            return self.get(WATCHMAN_TIMEOUT)
        with Origin(DJANGO_WATCHMAN_TIMEOUT_ENV, self.cwd).blame():
            return WATCHMAN_TIMEOUT.parse(raw)
