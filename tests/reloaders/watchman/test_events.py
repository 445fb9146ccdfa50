"""What a subscription result says, without a daemon (watchreload.reloaders.watchman.events)."""

from __future__ import annotations

from pathlib import Path

from watchreload.changes import Change
from watchreload.reloaders.watchman.events import file_changes, reported_signatures
from watchreload.reloaders.watchman.plan import RootTarget, SubscriptionPlan


def plan(tmp_path: Path) -> SubscriptionPlan:
    return SubscriptionPlan(str(tmp_path), "", [RootTarget(tmp_path, "", frozenset({"**/*.py"}))])


def test_reported_signatures_are_the_daemons_view_of_each_file(tmp_path: Path) -> None:
    files = [
        {"name": "a.py", "exists": True, "new": False, "type": "f", "mtime_ns": 7, "size": 3,
         "ino": 11},
        {"name": "gone.py", "exists": False, "new": False, "type": "f"},
        {"name": "link.py", "exists": True, "new": True, "type": "l", "mtime_ns": 1, "size": 9,
         "ino": 12},
    ]  # fmt: skip
    assert reported_signatures(plan(tmp_path), files) == {
        str(tmp_path / "a.py"): (7, 3, 11),
        str(tmp_path / "gone.py"): None,
    }  # a symlink is left out: the daemon describes the link, the scanner its target
    assert file_changes(plan(tmp_path), files) == [
        (tmp_path / "a.py", Change.modified),
        (tmp_path / "gone.py", Change.deleted),
        (tmp_path / "link.py", Change.added),
    ]
