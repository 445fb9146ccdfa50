"""The subscription plan, without a daemon: watch-project's answers come from a dict."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from watchreload.reloaders.watchman.plan import (
    Located,
    RootTarget,
    SubscriptionPlan,
    Watches,
    common_dir,
    is_library_file,
    nearest_existing,
    plan_subscriptions,
)
from watchreload.spec import IgnoreMatcher, WatchSpec


class FakeDaemon:
    """Answers watch-project from a dict of real directory -> (watch root, relative path)."""

    def __init__(self, answers: dict[Path, tuple[Path, str]]) -> None:
        self.answers = {os.path.realpath(d): (str(r), rel) for d, (r, rel) in answers.items()}
        self.events: list[str] = []  # "watch-project DIR" and "new watch PATH", in order

    def watch_project(self, directory: str) -> Located:
        self.events.append(f"watch-project {directory}")
        return self.answers[directory]

    def before_new_watch(self, path: Path) -> None:
        self.events.append(f"new watch {path}")


def mkdirs(*paths: Path) -> None:
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path.resolve()  # watch roots are real paths, as the daemon reports them


def test_a_root_inside_a_project_is_subscribed_below_the_project(base: Path) -> None:
    project = base / "project"
    src = project / "src"
    mkdirs(src)
    daemon = FakeDaemon({src: (project, "src")})
    planned = plan_subscriptions(WatchSpec.build([src]), Watches(daemon.watch_project))
    assert planned.plans == {
        str(project): SubscriptionPlan(
            str(project), "src", [RootTarget(src, "", frozenset({"**/*.py"}))]
        )
    }
    assert planned.stat_files == []
    assert daemon.events == [f"watch-project {src}"]


def test_roots_in_one_project_share_one_plan_below_their_common_directory(base: Path) -> None:
    project = base / "project"
    one, two, other = project / "a" / "one", project / "a" / "two", project / "b"
    mkdirs(one, two, other)
    daemon = FakeDaemon({one: (project, "a/one")})
    watches = Watches(daemon.watch_project)
    [plan] = plan_subscriptions(WatchSpec.build([one, two]), watches).plans.values()
    assert plan.relative_root == "a"
    assert sorted(t.relative for t in plan.targets) == ["one", "two"]
    assert daemon.events == [f"watch-project {one}"]  # `two` is found under the known watch

    [plan] = plan_subscriptions(WatchSpec.build([one, other]), watches).plans.values()
    assert plan.relative_root == ""
    assert sorted(t.relative for t in plan.targets) == ["a/one", "b"]
    assert len(daemon.events) == 1


def test_a_missing_root_is_watched_through_its_nearest_existing_parent(base: Path) -> None:
    mkdirs(base / "w")
    later = base / "w" / "not" / "yet"
    daemon = FakeDaemon({base / "w": (base / "w", "")})
    planned = plan_subscriptions(WatchSpec.build([later]), Watches(daemon.watch_project))
    [plan] = planned.plans.values()
    assert plan.relative_root == ""
    assert plan.targets == [RootTarget(later, "not/yet", frozenset({"**/*.py"}))]
    assert plan.path_for("not/yet/app.py") == later / "app.py"


def extra_only(*files: Path) -> WatchSpec:
    return WatchSpec(extra_files=frozenset(files), ignore=IgnoreMatcher(()))


def test_extra_files_join_a_watch_or_start_one_but_libraries_never_do(base: Path) -> None:
    project, elsewhere = base / "project", base / "elsewhere"
    library_dir = base / "venv" / "lib" / "site-packages" / "somelib"
    mkdirs(project / "conf", elsewhere, library_dir)
    settings, own = project / "conf" / "settings.toml", elsewhere / "own.py"
    library = library_dir / "__init__.py"
    daemon = FakeDaemon({elsewhere: (elsewhere, "")})
    watches = Watches(daemon.watch_project)
    watches.add([str(project)])  # an existing watch (the daemon's watch-list)
    planned = plan_subscriptions(
        extra_only(settings, own, library), watches, before_new_watch=daemon.before_new_watch
    )
    assert {root: plan.extra_files for root, plan in planned.plans.items()} == {
        str(project): {"settings.toml": settings},
        str(elsewhere): {"own.py": own},
    }
    assert planned.plans[str(project)].relative_root == "conf"
    assert planned.stat_files == [library]
    # The file is noted before its watch starts: an edit while the daemon crawls still counts.
    assert daemon.events == [f"new watch {own}", f"watch-project {elsewhere}"]


def test_a_library_file_joins_a_watch_that_covers_it(base: Path) -> None:
    library_dir = base / "venv" / "lib" / "site-packages" / "somelib"
    mkdirs(library_dir)
    library = library_dir / "__init__.py"
    daemon = FakeDaemon({})
    watches = Watches(daemon.watch_project)
    watches.add([str(base)])
    planned = plan_subscriptions(extra_only(library), watches, daemon.before_new_watch)
    assert planned.stat_files == []
    assert planned.plans[str(base)].extra_files == {"__init__.py": library}
    assert daemon.events == []


def test_watches_prefer_the_deepest_known_root(base: Path) -> None:
    outer, inner = base / "outer", base / "outer" / "inner"
    mkdirs(inner / "pkg", base / "apart")
    daemon = FakeDaemon({base / "apart": (base / "apart", "")})
    watches = Watches(daemon.watch_project)
    watches.add([str(outer), str(inner), str(outer)])
    assert watches.roots == [str(inner), str(outer)]
    assert watches.find(inner / "pkg") == (str(inner), "pkg")
    assert watches.find(outer) == (str(outer), "")
    assert watches.find(base / "apart") is None
    assert watches.locate(base / "apart") == (str(base / "apart"), "")
    assert watches.find(base / "apart") == (str(base / "apart"), "")
    watches.clear()
    assert watches.roots == []


def test_path_for_maps_result_names_back_to_the_spec_s_paths() -> None:
    plan = SubscriptionPlan(
        "/w",
        "proj",
        targets=[
            RootTarget(Path("/spec/proj"), "", frozenset({"**"})),
            RootTarget(Path("/spec/proj/src"), "src", frozenset({"**"})),
        ],
        extra_files={"conf/app.toml": Path("/spec/app.toml")},
    )
    assert plan.path_for("conf/app.toml") == Path("/spec/app.toml")
    assert plan.path_for("src/a.py") == Path("/spec/proj/src/a.py")  # the deepest target wins
    assert plan.path_for("srcx/a.py") == Path("/spec/proj/srcx/a.py")
    assert SubscriptionPlan("/w", "proj").path_for("a.py") == Path("/w/proj/a.py")


@pytest.mark.parametrize(
    ("paths", "common"),
    [
        ([], ""),
        (["a/b"], "a/b"),
        (["a/b/c", "a/b/d", "a/b"], "a/b"),
        (["a", "b"], ""),
        (["", "a"], ""),
    ],
)
def test_common_dir(paths: list[str], common: str) -> None:
    assert common_dir(paths) == common


def test_is_library_file(base: Path) -> None:
    assert is_library_file(Path(os.__file__))
    assert is_library_file(base / "env" / "lib" / "python3" / "site-packages" / "x.py")
    assert is_library_file(base / "usr" / "lib" / "python3" / "dist-packages" / "x.py")
    assert not is_library_file(base / "project" / "app.py")


def test_nearest_existing(base: Path) -> None:
    mkdirs(base / "a")
    assert nearest_existing(base / "a") == base / "a"
    assert nearest_existing(base / "a" / "b" / "c") == base / "a"
