"""origins.py: stable or volatile, the blocker and the purge, in this process (undone after)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchreload.preload.origins import Blocker, Origins, module_name, purge, stable_roots


@pytest.fixture
def on_path(tmp_path: Path) -> Iterator[Path]:
    """`tmp_path` on sys.path for the test; the modules it brought from there are dropped after.

    Only those: a module of watchreload's first imported during the test must stay, or a later
    import would make a second copy of its classes (and isinstance() would fail elsewhere).
    """
    before = set(sys.modules)
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - before:
        places = [getattr(sys.modules[name], "__file__", None) or ""]
        places += list(getattr(sys.modules[name], "__path__", []))
        if any(str(place).startswith(str(tmp_path)) for place in places):
            del sys.modules[name]
    importlib.invalidate_caches()


def test_the_deepest_root_decides(tmp_path: Path) -> None:
    project, venv_site = tmp_path / "proj", tmp_path / "proj" / ".venv" / "site-packages"
    watched_in_site = venv_site / "editable_pkg"
    places = Origins([str(venv_site)], [str(project), str(watched_in_site)])
    assert places.volatile(str(project / "app.py"))
    assert not places.volatile(str(venv_site / "django" / "__init__.py"))  # a venv in the project
    assert places.volatile(str(watched_in_site / "mod.py"))  # a watched root inside site-packages
    assert places.volatile("/somewhere/else/mod.py")  # under no stable root
    assert not Origins([str(tmp_path)], [str(tmp_path)]).volatile(str(tmp_path / "m.py"))


def test_the_stdlib_and_site_packages_are_stable() -> None:
    roots = stable_roots()
    places = Origins(roots, [])
    assert not places.volatile(importlib.import_module("json").__file__ or "")
    assert not places.volatile(pytest.__file__)


def test_the_blocker_refuses_project_modules_and_namespace_packages(on_path: Path) -> None:
    (on_path / "projmod.py").write_text("VALUE = 1\n")
    (on_path / "nsonly").mkdir()
    places = Origins(stable_roots(), [str(on_path)])
    with Blocker(places) as blocker:
        for name in ("projmod", "nsonly"):
            with pytest.raises(ModuleNotFoundError, match="volatile origin"):
                importlib.import_module(name)
        importlib.import_module("json")
    assert blocker.refused == ["projmod", "nsonly"]
    assert blocker not in sys.meta_path
    assert "projmod" not in sys.modules and "nsonly" not in sys.modules


def test_purge_removes_what_slipped_in_empty_namespace_packages_too(on_path: Path) -> None:
    (on_path / "slipped.py").write_text("")
    (on_path / "mysite").mkdir()  # a directory named like a package: an empty namespace package
    (on_path / "nsdir").mkdir()
    (on_path / "nsdir" / "inner.py").write_text("")
    # What this test process had already (watchreload itself is volatile here: an editable
    # install) must stay, or later tests would get second copies of watchreload's classes.
    already = set(sys.modules)
    for name in ("slipped", "mysite", "nsdir.inner"):
        importlib.import_module(name)
    gone = purge(Origins(stable_roots(), [str(on_path)]), keep=already)
    assert {"slipped", "mysite", "nsdir", "nsdir.inner"} <= set(gone)
    assert not {"slipped", "mysite", "nsdir", "nsdir.inner"} & set(sys.modules)
    assert "json" not in gone


def test_module_names_of_files() -> None:
    entries = ["/site", "/site/vendored", "/proj"]
    assert module_name("/site/django/db/__init__.py", entries) == "django.db"
    assert module_name("/site/django/db/models/base.py", entries) == "django.db.models.base"
    assert module_name("/site/vendored/six.py", entries) == "six"  # the deepest entry
    assert module_name("/site/_x.cpython-311-x86_64-linux-gnu.so", entries) == "_x"
    assert module_name("/site/my-dist-1.0.dist-info/x.py", entries) is None
    assert module_name("/elsewhere/m.py", entries) is None
