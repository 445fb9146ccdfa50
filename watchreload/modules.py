"""Which files the running Python program has imported (Django's iter_all_python_module_files)."""

from __future__ import annotations

import functools
import logging
import sys
import weakref
import zipimport
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

logger = logging.getLogger(__name__)

# Files of modules that failed to import (for example with a syntax error). Watching them means
# that fixing the error reloads the program.
_error_files: list[str] = []


def iter_all_python_module_files() -> frozenset[Path]:
    """Every source file of the imported modules, `__main__` included, plus files that failed."""
    # sys.modules changes often but is rarely replaced as a whole; key the cache on its contents'
    # identity so that a tick in a quiet program costs a tuple build, not a walk of every module.
    # A weakref.proxy to a module passes isinstance(ModuleType) but cannot be a cache key.
    modules = tuple(
        m
        for m in map(sys.modules.__getitem__, sorted(sys.modules))
        if not isinstance(m, weakref.ProxyTypes) and isinstance(m, ModuleType)
    )
    return iter_modules_and_files(modules, frozenset(_error_files))


@functools.lru_cache(maxsize=1)
def iter_modules_and_files(
    modules: tuple[ModuleType, ...], extra_files: frozenset[str]
) -> frozenset[Path]:
    """The source files of `modules` (zip archives for zipimported ones) and `extra_files`,
    resolved, leaving out what does not exist. Cached for the last arguments (Django's)."""
    sys_file_paths: list[str] = []
    for module in modules:
        if not isinstance(module, ModuleType):
            continue
        if module.__name__ in ("__main__", "__mp_main__"):
            # __main__ (usually manage.py or app.py) has no __spec__ when run as a script.
            main_file = getattr(module, "__file__", None)
            if main_file:
                sys_file_paths.append(main_file)
            continue
        spec = getattr(module, "__spec__", None)
        if spec is None:
            continue
        if isinstance(spec.loader, zipimport.zipimporter):
            origin = spec.loader.archive
        elif getattr(spec, "has_location", False) and spec.origin:
            origin = spec.origin
        else:
            continue
        sys_file_paths.append(origin)
    return frozenset(_resolve(sys_file_paths + list(extra_files)))


def _resolve(filenames: Iterable[str]) -> Iterable[Path]:
    for filename in filenames:
        if not filename:
            continue
        path = Path(filename)
        try:
            if not path.exists():
                continue  # built-ins, frozen modules, '<string>'
        except (OSError, ValueError) as exc:
            # A network file system may report a path with a null byte in it.
            logger.debug("%r raised when resolving path %r", exc, filename)
            continue
        yield path.resolve().absolute()


def record_error_file(filename: str | None) -> None:
    """Remember the file of a module whose import failed, so that fixing it reloads."""
    if filename and filename not in _error_files:
        _error_files.append(filename)


def sys_path_directories() -> Iterator[Path]:
    """The directories of sys.path that exist, resolved; a zip file's own directory."""
    for entry in sys.path:
        path = Path(entry)
        if not path.exists():
            continue
        resolved = path.resolve().absolute()
        yield resolved.parent if resolved.is_file() else resolved
