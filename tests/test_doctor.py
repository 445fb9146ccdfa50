"""watchreload.doctor: real checks against the session's isolated Watchman, a dead socket, a fake
/proc for the inotify limits, a real FUSE (bindfs) mount and a bad setting."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.programs.harness import clean_environ
from tests.support import WatchmanDaemon
from tests.test_mounts import fuse_mount  # noqa: F401 - the bindfs fixture, reused as it is
from watchreload.doctor import (
    Check,
    Report,
    doctor_main,
    exit_code,
    format_text,
    from_json,
    run_checks,
    to_json,
)
from watchreload.doctor.adapters import subscription_expression
from watchreload.spec import WatchSpec

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc")


def make_tree(root: Path, packages: int = 3) -> Path:
    """A small project: packages with .py files, and ignored directories of different sizes."""
    for p in range(packages):
        package = root / f"pkg_{p}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "mod.py").write_text("x = 1\n")
        (package / "notes.txt").write_text("not watched\n")
    for name, files in (("node_modules/left", 5), (".venv/lib", 3), ("pkg_0/__pycache__", 2)):
        directory = root / name
        directory.mkdir(parents=True)
        for i in range(files):
            (directory / f"f{i}.py").write_text("")
    return root


def by_name(report: Report, name: str) -> list[Check]:
    return [check for check in report if check.name == name]


def one(report: Report, name: str) -> Check:
    (check,) = by_name(report, name)
    return check


def watchman_cli(daemon: WatchmanDaemon, *args: str, stdin: str = "") -> dict[str, object]:
    done = subprocess.run(
        ["watchman", f"--sockname={daemon.sockname}", "--no-spawn", "--no-pretty", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "project")


@pytest.mark.watchman
def test_a_healthy_setup_exits_0(tree: Path, watchman_daemon: WatchmanDaemon) -> None:
    environ = clean_environ()
    report = run_checks([tree], environ=environ, cwd=tree)
    assert exit_code(report) == 0, format_text(report)
    assert one(report, "backend").data == {"backend": "watchman", "reason": "Watchman is available"}
    daemon = one(report, "watchman daemon")
    assert daemon.status == "ok"
    assert daemon.data["socket"] == str(watchman_daemon.sockname)
    watch = one(report, "watch")
    assert watch.summary == f"{tree}: not watched yet; watch-project would watch {tree}"
    files = one(report, "files")
    assert files.data["source"] == "scan"
    assert files.data["matched_files"] == 6  # node_modules, .venv and __pycache__ are ignored
    assert files.data["largest_ignored"] == [
        ["node_modules", 5],
        [".venv", 3],
        ["pkg_0/__pycache__", 2],
    ]
    # Read-only: doctor did not watch the root it was asked about.
    roots = watchman_cli(watchman_daemon, "watch-list")["roots"]
    assert isinstance(roots, list) and os.path.realpath(tree) not in roots


@pytest.mark.watchman
def test_a_root_the_daemon_watches_is_counted_by_it(
    tree: Path, watchman_daemon: WatchmanDaemon
) -> None:
    scanned = one(run_checks([tree / "pkg_0"], environ=clean_environ(), cwd=tree), "files")
    (tree / ".watchmanconfig").write_text('{"settle": 20}\n')
    watched = os.path.realpath(tree)
    watchman_cli(watchman_daemon, "watch-project", str(tree))
    try:
        report = run_checks([tree / "pkg_0"], environ=clean_environ(), cwd=tree)
        assert exit_code(report) == 0, format_text(report)
        watch = one(report, "watch")
        assert watch.status == "ok"
        assert watch.data["watch"] == watched
        files = one(report, "files")
        assert files.data["source"] == "watchman"
        for key in ("matched_files", "directories", "largest_ignored"):
            assert files.data[key] == scanned.data[key], key
        # ... and to the daemon evaluating the subscription's own expression.
        spec = WatchSpec.build([tree / "pkg_0"])
        query = {
            "expression": subscription_expression(tree / "pkg_0", ["**/*.py"], spec),
            "fields": ["name"],
            "relative_root": "pkg_0",
        }
        answer = watchman_cli(watchman_daemon, "-j", stdin=json.dumps(["query", watched, query]))
        assert isinstance(answer["files"], list)
        assert len(answer["files"]) == files.data["matched_files"] == 2
        assert one(report, "watchmanconfig").data["keys"] == ["settle"]
        # Recrawled: the warning Watchman attaches to its answers becomes a warn with the fix.
        watchman_cli(watchman_daemon, "debug-recrawl", str(tree))
        recrawled = one(run_checks([tree / "pkg_0"], environ=clean_environ(), cwd=tree), "watch")
        assert recrawled.status == "warn"
        assert "Recrawled this watch 1 times" in recrawled.summary
        assert recrawled.fix is not None and f"watchman watch-del {watched}" in recrawled.fix
    finally:
        watchman_cli(watchman_daemon, "watch-del", str(tree))


def test_a_missing_daemon_fails_fast(tree: Path, tmp_path: Path) -> None:
    environ = clean_environ(WATCHMAN_SOCK=str(tmp_path / "dead.sock"))
    started = time.monotonic()
    report = run_checks([tree], environ=environ, cwd=tree, watchman_timeout_s=5)
    elapsed = time.monotonic() - started
    print(f"doctor without a daemon took {elapsed:.2f}s")  # a note, not a timed assert
    assert exit_code(report) == 1
    daemon = one(report, "watchman daemon")
    assert daemon.status == "fail"
    assert daemon.summary.startswith(f"no daemon answers at {tmp_path / 'dead.sock'}: ")
    assert daemon.fix is not None and "WATCHMAN_SOCK" in daemon.fix
    backend = one(report, "backend")
    assert backend.data["backend"] == "stat"
    assert str(backend.data["reason"]).startswith("Watchman unavailable: ")
    assert os.environ.get("WATCHMAN_SOCK") != str(tmp_path / "dead.sock")  # restored
    text = format_text(report).splitlines()
    failed = next(i for i, line in enumerate(text) if line.startswith("fail  watchman daemon"))
    assert text[failed + 1].strip().startswith("fix: start it")


def test_a_poisoned_daemon_fails_with_the_fix(
    tree: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    daemon = WatchmanDaemon(tmp_path_factory.mktemp("wmp", numbered=True))
    try:
        daemon.start()
    except (RuntimeError, AssertionError, OSError) as exc:
        daemon.stop()
        if os.environ.get("CI"):  # as the watchman_daemon fixture: CI installs the daemon
            pytest.fail(f"the Watchman daemon could not start under CI: {exc}")
        pytest.skip(f"a Watchman daemon could not start: {exc}")
    try:
        watchman_cli(daemon, "watch-project", str(tree))
        watchman_cli(daemon, "debug-poison", str(tree))
        report = run_checks([tree], environ=clean_environ(WATCHMAN_SOCK=str(daemon.sockname)))
    finally:
        daemon.stop()
    check = one(report, "watchman daemon")
    assert check.status == "fail"
    assert "poisoned" in check.summary and "non-recoverable" in check.summary
    assert check.fix is not None and "watchman shutdown-server" in check.fix
    assert exit_code(report) == 1


def fake_proc(root: Path, max_watches: int, in_use: int) -> Path:
    """A /proc with the inotify limits and one process of ours holding `in_use` watches."""
    limits = root / "sys" / "fs" / "inotify"
    limits.mkdir(parents=True)
    (limits / "max_user_watches").write_text(f"{max_watches}\n")
    (limits / "max_user_instances").write_text("128\n")
    process = root / "4242"
    (process / "fd").mkdir(parents=True)
    (process / "fdinfo").mkdir()
    (process / "fd" / "3").symlink_to("anon_inode:inotify")
    (process / "fd" / "4").symlink_to("/dev/null")
    lines = [
        f"inotify wd:{i + 1} ino:{i} sdev:800001 mask:fce ignored_mask:0" for i in range(in_use)
    ]
    (process / "fdinfo" / "3").write_text("pos:\t0\nflags:\t00\n" + "\n".join(lines) + "\n")
    (process / "fdinfo" / "4").write_text("pos:\t0\n")
    return root


def test_too_low_an_inotify_limit_warns_with_the_sysctl_fix(tree: Path, tmp_path: Path) -> None:
    for i in range(30):
        (tree / "pkg_1" / f"sub_{i}").mkdir()
    proc = fake_proc(tmp_path / "proc", max_watches=50, in_use=10)
    environ = clean_environ(WATCHMAN_SOCK=str(tmp_path / "dead.sock"))
    report = run_checks([tree], environ=environ, cwd=tree, proc_root=proc)
    check = one(report, "inotify")
    assert check.status == "warn"
    assert check.data["max_user_watches"] == 50
    assert check.data["watches_in_use"] == 10
    assert check.data["instances_in_use"] == 1
    # Every directory a Watchman watch would hold, ignored ones too (node_modules/left, .venv/lib).
    assert check.data["directories_to_add"] == 1 + 3 + 30 + 5
    assert check.fix is not None
    assert "sudo sysctl fs.inotify.max_user_watches=524288" in check.fix
    assert "echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/" in check.fix
    # Watching a directory of a checkout watches the checkout: count what watch-project takes.
    (tree / ".git").mkdir()
    report = run_checks([tree / "pkg_1"], environ=environ, proc_root=proc)
    assert one(report, "watch").data["would_watch"] == str(tree)
    assert one(report, "inotify").data["directories_to_add"] == 1 + 3 + 30 + 5 + 1  # and .git
    roomy = fake_proc(tmp_path / "roomy", max_watches=524288, in_use=10)
    assert one(run_checks([tree], environ=environ, proc_root=roomy), "inotify").status == "ok"


@linux_only
def test_a_fuse_mount_says_events_may_not_arrive_and_auto_polls(
    fuse_mount: tuple[Path, Path],  # noqa: F811
    watchman_daemon: WatchmanDaemon,
) -> None:
    _, mount_point = fuse_mount
    report = run_checks([mount_point], environ=clean_environ(), cwd=mount_point)
    line = one(report, "file system")
    assert line.summary.startswith(
        f"{mount_point}: {mount_point} is on a fuse mount (a FUSE file system), where file events "
        "may not arrive; auto polls there"
    )
    assert line.data["mounts"][0]["unreliable"] is True
    backend = one(report, "backend")
    assert backend.data["backend"] == "stat"
    assert "where file events may not arrive" in str(backend.data["reason"])
    files = one(report, "files")
    assert (files.data["source"], files.data["matched_files"]) == ("scan", 1)  # app.py


def test_a_bad_setting_fails_the_settings_check(tree: Path, tmp_path: Path) -> None:
    environ = clean_environ(WATCHRELOAD_DEBOUNCE="abc", WATCHMAN_SOCK=str(tmp_path / "dead.sock"))
    check = one(run_checks([tree], environ=environ, cwd=tree), "settings")
    assert check.status == "fail"
    assert check.data["error"] == (
        "WATCHRELOAD_DEBOUNCE: debounce 'abc' is invalid; pass a number of milliseconds 0 or more"
    )
    assert check.data["error_type"] == "ConfigError"
    assert check.summary == "WATCHRELOAD_DEBOUNCE: debounce 'abc' is invalid"
    assert check.fix == "pass a number of milliseconds 0 or more"
    out = io.StringIO()
    assert doctor_main([tree], environ=environ, cwd=tree, out=out) == 1
    lines = out.getvalue().splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("fail  settings"))
    assert lines[failed].endswith("WATCHRELOAD_DEBOUNCE: debounce 'abc' is invalid")
    assert lines[failed + 1].strip() == "fix: pass a number of milliseconds 0 or more"


def test_settings_name_their_sources(tree: Path, tmp_path: Path) -> None:
    (tree / "pyproject.toml").write_text('[tool.watchreload]\nglob = ["**/*.txt"]\n')
    environ = clean_environ(WATCHRELOAD_DEBOUNCE="75", WATCHMAN_SOCK=str(tmp_path / "dead.sock"))
    report = run_checks([tree], environ=environ, cwd=tree)
    settings = one(report, "settings").data["settings"]
    assert settings["debounce"] == {"value": 75.0, "source": "WATCHRELOAD_DEBOUNCE"}
    pyproject = f"{tree / 'pyproject.toml'} [tool.watchreload] glob"
    assert settings["glob"] == {"value": ["**/*.txt"], "source": pyproject}
    assert settings["backend"] == {"value": "auto", "source": "default"}
    assert one(report, "pyproject").status == "ok"
    # doctor_main takes the globs from the settings.
    out = io.StringIO()
    doctor_main([tree], json_output=True, environ=environ, cwd=tree, out=out)
    files = one(from_json(out.getvalue()), "files")
    assert files.data["matched_files"] == 3


def test_json_round_trips(tree: Path, tmp_path: Path) -> None:
    environ = clean_environ(WATCHMAN_SOCK=str(tmp_path / "dead.sock"))
    report = run_checks([tree, tmp_path / "missing"], environ=environ, cwd=tree)
    assert from_json(to_json(report)) == report
    assert json.loads(to_json(report))["exit_code"] == exit_code(report) == 1
    assert one(report, "watch path").summary == f"watch path {tmp_path / 'missing'} does not exist"
    out = io.StringIO()
    assert doctor_main([tree], json_output=True, environ=environ, cwd=tree, out=out) == 1
    assert [check.name for check in from_json(out.getvalue())] == [
        check.name for check in run_checks([tree], environ=environ, cwd=tree)
    ]


def test_git_hooks_installed_or_not(tree: Path, tmp_path: Path) -> None:
    from watchreload.vcs import install_git_hooks

    environ = clean_environ(WATCHMAN_SOCK=str(tmp_path / "dead.sock"))
    assert one(run_checks([tree], environ=environ), "git hooks").summary.endswith(
        "is not in a git working tree"
    )
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    hooks = one(run_checks([tree], environ=environ), "git hooks")
    assert hooks.status == "info" and hooks.fix == f"watchreload-git-hooks install {tree}"
    install_git_hooks(tree)
    assert one(run_checks([tree], environ=environ), "git hooks").status == "ok"


def test_without_a_daemon_doctor_starts_none(tree: Path, tmp_path: Path) -> None:
    # No WATCHMAN_SOCK: the per-user socket lives under TMPDIR, where no daemon runs.
    environ = {k: v for k, v in clean_environ(TMPDIR=str(tmp_path)).items() if k != "WATCHMAN_SOCK"}
    report = run_checks([tree], environ=environ, cwd=tree)
    socket = one(report, "watchman socket").data["socket"]
    assert isinstance(socket, str) and socket.startswith(str(tmp_path))
    daemon = one(report, "watchman daemon")
    assert daemon.status == "info"
    assert "watchreload starts it on demand (doctor does not)" in daemon.summary
    backend = one(report, "backend")
    assert backend.data["backend"] == "watchman"
    assert backend.summary.startswith("auto would start the per-user Watchman daemon")
    assert not Path(socket).exists()  # nothing was started
    assert exit_code(report) == 0, format_text(report)


def test_the_command_line_runs_doctor(tree: Path, tmp_path: Path) -> None:
    """`watchreload doctor` through the installed console script: text, --json, usage errors."""
    environ = clean_environ(WATCHMAN_SOCK=str(tmp_path / "dead.sock"))
    script = Path(sys.executable).with_name("watchreload")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args], capture_output=True, text=True, env=environ, cwd=tree, timeout=60
        )

    text = run("doctor", "-w", str(tree))
    assert text.returncode == 1, text.stderr  # no daemon answers: something needs fixing
    assert any(line.startswith("fail  watchman daemon") for line in text.stdout.splitlines())
    as_json = run("doctor", "--watch", str(tree), "--json")
    assert as_json.returncode == 1
    assert {c.name for c in from_json(as_json.stdout)} >= {"backend", "files", "settings"}
    usage = run("doctor", "--bogus")
    assert usage.returncode == 2
    assert "No such option '--bogus'" in usage.stderr


@pytest.mark.watchman
def test_git_ignored_files_are_not_counted_as_watched(
    tree: Path, tmp_path: Path, watchman_daemon: WatchmanDaemon
) -> None:
    """The counts apply the project's git ignore rules, as both backends do; by walk and by the
    daemon's listing alike."""
    subprocess.run(["git", "init", "-q", str(tree)], check=True, timeout=60)
    (tree / ".gitignore").write_text("build/\n*_pb2.py\n")
    (tree / "build" / "lib").mkdir(parents=True)
    for i in range(4):
        (tree / "build" / "lib" / f"gen{i}.py").write_text("")
    (tree / "pkg_1" / "api_pb2.py").write_text("")
    walked = one(run_checks([tree], environ=clean_environ(), cwd=tree), "files")
    assert walked.data["matched_files"] == 6  # as without the generated files
    assert ["build", 4] in walked.data["largest_ignored"]
    watchman_cli(watchman_daemon, "watch-project", str(tree))
    listed = one(run_checks([tree], environ=clean_environ(), cwd=tree), "files")
    assert listed.data["source"] == "watchman"
    assert listed.data["matched_files"] == 6
