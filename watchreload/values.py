"""Parsing one setting's value: each parser names the value and the fix, and raises ConfigError;
setting_sources.Origin.blame() adds where the value came from."""

from __future__ import annotations

import math
import signal
from collections.abc import Callable
from typing import cast

from watchreload.errors import ConfigError
from watchreload.spec import compile_glob


def number(what: str, unit: str, *, allow_zero: bool = True) -> Callable[[object], float]:
    """A parser of a finite number of `unit` (0 or more, or above 0)."""

    def parse(value: object) -> float:
        if isinstance(value, bool):
            parsed = math.nan
        elif isinstance(value, int | float):
            parsed = float(value)
        else:
            try:
                parsed = float(str(value).strip())
            except ValueError:
                parsed = math.nan
        if not math.isfinite(parsed) or parsed < 0 or (parsed == 0 and not allow_zero):
            bound = "0 or more" if allow_zero else "above 0"
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
            raise ConfigError(f"{what} {shown} is invalid; pass a number of {unit} {bound}")
        return parsed

    return parse


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{value!r} is not a boolean; pass true or false (or 1 or 0)")


def parse_signal(value: object) -> signal.Signals:
    """Accept `TERM`, `SIGTERM`, `sigterm`, `15` (or the int 15)."""
    text = str(value).strip()
    try:
        if isinstance(value, int) or text.isdigit():
            return signal.Signals(int(text))
        name = text.upper()
        return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except (KeyError, ValueError) as exc:
        raise ConfigError(
            f"stop signal {value!r} is unknown; pass a name such as SIGTERM, SIGINT or SIGHUP "
            "(TERM and 15 also work)"
        ) from exc


def parse_globs(value: object) -> tuple[str, ...]:
    globs = tuple(cast("tuple[str, ...] | list[str]", value))
    for pattern in globs:
        compile_glob(pattern)
    return globs


def parse_paths(value: object) -> tuple[str, ...]:
    """Paths as given; config.py checks them against the directory they are relative to."""
    paths = tuple(cast("tuple[str, ...] | list[str]", value))
    if not paths:
        raise ConfigError("no watch path given; pass at least one directory")
    return paths


def one_of(what: str, choices: tuple[str, ...]) -> Callable[[object], str]:
    """A parser of one of `choices`, in any case."""

    def parse(value: object) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ConfigError(f"{what} {value!r} is unknown; pass one of {', '.join(choices)}")
        return text

    return parse
