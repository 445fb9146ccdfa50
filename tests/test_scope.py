"""scope.py: which changes restart a Python command, given what it imported."""

from __future__ import annotations

from pathlib import Path

from watchreload.changes import Change, ChangeSet
from watchreload.scope import Imports, decide, is_installed, outside_modules

APP = Path("/src/app")
IMPORTS = Imports(
    frozenset({APP / "main.py", APP / "blog" / "models.py"}),
    frozenset({APP / "broken.py"}),
    reported=True,
)


def batch(*items: tuple[Path, Change]) -> ChangeSet:
    return ChangeSet(dict(items))


def test_an_imported_module_restarts() -> None:
    decision = decide(batch((APP / "main.py", Change.modified)), IMPORTS)
    assert decision.restart == batch((APP / "main.py", Change.modified))
    assert decision.dropped == ()


def test_a_module_nobody_imported_is_dropped() -> None:
    decision = decide(batch((Path("/src/other/tool.py"), Change.modified)), IMPORTS)
    assert decision.restart is None
    assert decision.dropped == (Path("/src/other/tool.py"),)


def test_a_file_that_failed_to_import_restarts() -> None:
    assert decide(batch((APP / "broken.py", Change.modified)), IMPORTS).restart is not None


def test_a_new_or_removed_module_next_to_an_imported_one_restarts() -> None:
    for kind in (Change.added, Change.deleted):
        new = batch((APP / "blog" / "admin.py", kind))
        assert decide(new, IMPORTS).restart == new
    # An edit to a module in that directory that nobody imported does not.
    edit = batch((APP / "blog" / "unused.py", Change.modified))
    assert decide(edit, IMPORTS).restart is None
    # Nor does a new module in a directory of no imported module.
    elsewhere = batch((Path("/src/other/admin.py"), Change.added))
    assert decide(elsewhere, IMPORTS).restart is None


def test_other_globs_restart_as_before() -> None:
    template = batch((Path("/src/other/templates/base.html"), Change.modified))
    assert decide(template, IMPORTS).restart == template


def test_a_mixed_batch_keeps_what_restarts() -> None:
    mixed = batch((APP / "main.py", Change.modified), (Path("/src/other/tool.py"), Change.modified))
    decision = decide(mixed, IMPORTS)
    assert decision.restart == batch((APP / "main.py", Change.modified))
    assert decision.dropped == (Path("/src/other/tool.py"),)


def test_before_the_first_report_everything_restarts() -> None:
    changes = batch((Path("/src/other/tool.py"), Change.modified))
    assert decide(changes, Imports(reported=False)).restart == changes


def test_without_imports_everything_restarts() -> None:
    changes = batch((Path("/src/other/tool.py"), Change.modified))
    assert decide(changes, None).restart == changes
    reason = ChangeSet(reason="SIGHUP received")
    assert decide(reason, IMPORTS).restart == reason


def test_paths_are_compared_through_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "mod.py").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    imports = Imports(frozenset({tmp_path / "link" / "mod.py"}), reported=True)
    changes = batch((tmp_path / "real" / "mod.py", Change.modified))
    assert decide(changes, imports).restart == changes


def test_installed_modules_are_told_apart() -> None:
    assert is_installed(Path("/usr/lib/python3.12/json/__init__.py"))
    assert is_installed(Path("/venv/lib/python3.11/site-packages/django/__init__.py"))
    assert is_installed(Path("/usr/lib/python3/dist-packages/yaml/__init__.py"))
    assert is_installed(Path("/opt/pypy/lib/pypy3.10/os.py"))
    assert not is_installed(Path("/home/me/sibling/sibling/core.py"))
    assert not is_installed(Path("/home/me/lib/helpers.py"))


def test_outside_modules_are_the_uninstalled_ones_outside_the_roots() -> None:
    modules = [
        APP / "main.py",
        Path("/home/me/sibling/sibling/core.py"),
        Path("/venv/lib/python3.11/site-packages/django/__init__.py"),
        Path("/usr/lib/python3.11/json/__init__.py"),
        Path("/home/me/ext/_speedups.so"),
    ]
    assert outside_modules(modules, [Path("/src")]) == {Path("/home/me/sibling/sibling/core.py")}


def test_the_batch_keeps_when_its_first_change_was_detected() -> None:
    """The ready line counts from there (detection, debounce and the stop included)."""
    mixed = ChangeSet(
        {APP / "main.py": Change.modified, Path("/src/other/tool.py"): Change.modified},
        detected_at=123.5,
    )
    restart = decide(mixed, IMPORTS).restart
    assert restart is not None and restart.detected_at == 123.5
