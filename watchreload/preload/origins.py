"""Where a module comes from: a stable location (the standard library, site-packages) or not.

Runs inside the template, in the command's interpreter: standard library only, and nothing that
needs a newer Python than the command's.

Only modules from stable locations are preloaded. Everything else (the watched roots, the
script's directory, `PYTHONPATH`, editable installs, any other directory on `sys.path`) is
volatile: `Blocker`, first on `sys.meta_path` while the template preloads, refuses it, and
`purge()` removes from `sys.modules` whatever came in anyway, namespace packages included (a
directory named like a package makes one, and the child would inherit it). The deepest root
that contains a path decides, so a virtualenv inside the project is stable and a watched root
inside site-packages is volatile.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import site
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# The template's own modules (loaded by its bootstrap under this package name) are never purged.
PRIVATE_PACKAGE = "_watchreload_preload"


def stable_roots() -> list[str]:
    """The standard library and site-packages directories of this interpreter."""
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    roots.update(getattr(site, "getsitepackages", list)())
    if site.ENABLE_USER_SITE and site.USER_SITE:
        roots.add(site.USER_SITE)
    dynload = os.path.join(sysconfig.get_paths()["platstdlib"], "lib-dynload")
    roots.add(dynload)
    return sorted(os.path.realpath(r) for r in roots if os.path.isdir(r))


class Origins:
    """Classifies paths by the deepest stable or volatile root that contains them."""

    def __init__(self, stable: Iterable[str], volatile: Iterable[str]) -> None:
        roots = [(os.path.realpath(p), False) for p in stable if p]
        roots += [(os.path.realpath(p), True) for p in volatile if p]
        # Longest first: the deepest root that contains a path decides (at equal depth, stable).
        self._roots = sorted(roots, key=lambda item: (len(item[0]), not item[1]), reverse=True)
        self._cache: dict[str, bool] = {}

    def volatile(self, path: str) -> bool:
        """True unless `path` lies under a stable root and under no deeper volatile one."""
        directory = os.path.dirname(path)
        known = self._cache.get(directory)
        if known is None:
            known = self._classify(os.path.realpath(directory))
            self._cache[directory] = known
        return known

    def _classify(self, directory: str) -> bool:
        for root, volatile in self._roots:
            if directory == root or directory.startswith(root + os.sep):
                return volatile
        return True  # under no stable root: a project directory

    def spec_volatile(self, spec: ModuleSpec) -> bool:
        """True when the module `spec` describes would load code from a volatile place."""
        locations = list(spec.submodule_search_locations or ())
        if spec.origin and spec.has_location:
            return self.volatile(spec.origin)
        if locations:  # a namespace package: any volatile portion makes it volatile
            return any(self.volatile(os.path.join(loc, "__init__.py")) for loc in locations)
        if spec.origin in (None, "namespace"):
            return False  # an empty namespace package is judged by purge(), not here
        return False  # built-in, frozen

    def module_volatile(self, module: ModuleType) -> bool:
        spec = getattr(module, "__spec__", None)
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path:
            return self.volatile(path)
        locations = list(getattr(module, "__path__", None) or ())
        if locations:
            return any(self.volatile(os.path.join(str(loc), "__init__.py")) for loc in locations)
        if spec is not None and spec.submodule_search_locations is not None:
            # A namespace package with no portion left: made up by a stray directory.
            return spec.origin in (None, "namespace")
        return False


def module_name(path: str, entries: Sequence[str]) -> str | None:
    """The module a file is loaded as from the deepest `sys.path` entry holding it, or None."""
    best = max((e for e in entries if path.startswith(e + os.sep)), key=len, default=None)
    if best is None:
        return None
    parts = path[len(best) + 1 :].split(os.sep)
    if parts[-1].startswith("__init__."):
        parts.pop()
    else:
        parts[-1] = parts[-1].split(".", 1)[0]  # mod.py, mod.cpython-311-x86_64-linux-gnu.so
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def module_names(files: Iterable[str]) -> list[str]:
    """The modules of the files the agent reported, parents first (by path order)."""
    entries = sorted({os.path.realpath(p) for p in sys.path if p} | {p for p in sys.path if p})
    names = []
    for path in sorted(files):
        name = module_name(path, entries) or module_name(os.path.realpath(path), entries)
        if name is not None and name not in names:
            names.append(name)
    return names


class Blocker:
    """A `sys.meta_path` finder that refuses modules from volatile places while preloading, and
    the modules left out (`excluded`, with their submodules) whoever imports them."""

    def __init__(self, origins: Origins, excluded: Iterable[str] = ()) -> None:
        self.origins = origins
        self.excluded = tuple(excluded)
        self.refused: list[str] = []
        self._busy = False

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if self._busy:
            return None
        if any(name == e or name.startswith(e + ".") for e in self.excluded):
            self.refused.append(name)
            raise ModuleNotFoundError(f"{name} is not preloaded (left out)", name=name)
        self._busy = True
        try:
            spec = self._find_elsewhere(name, path, target)
        finally:
            self._busy = False
        if spec is not None and self.origins.spec_volatile(spec):
            self.refused.append(name)
            raise ModuleNotFoundError(f"{name} is not preloaded (volatile origin)", name=name)
        return spec

    def _find_elsewhere(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None
    ) -> ModuleSpec | None:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: ModuleSpec | None = finder.find_spec(name, path, target)
            if spec is not None:
                return spec
        return None

    def __enter__(self) -> Blocker:
        sys.meta_path.insert(0, self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def purge(origins: Origins, keep: Iterable[str] = ("__main__",)) -> list[str]:
    """Remove volatile modules from `sys.modules` (and clear the import caches); their names."""
    kept = set(keep)
    gone = []
    for name, module in list(sys.modules.items()):
        if name in kept or name == PRIVATE_PACKAGE or name.startswith(PRIVATE_PACKAGE + "."):
            continue
        if isinstance(module, ModuleType) and origins.module_volatile(module):
            gone.append(name)
    forget(gone)
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    return gone


def forget(names: Iterable[str]) -> None:
    """Take modules out of `sys.modules` and off their parent packages' attributes."""
    names = list(names)
    for name in names:
        sys.modules.pop(name, None)
    for name in names:
        parent, _, child = name.rpartition(".")
        holder = sys.modules.get(parent)
        value = getattr(holder, child, None) if holder is not None else None
        if holder is not None and isinstance(value, ModuleType) and value.__name__ == name:
            with contextlib.suppress(AttributeError):
                delattr(holder, child)
