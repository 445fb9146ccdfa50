"""Staleness and the other reasons to exec: with a real template, and the Fingerprint on its own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.preload.conftest import StartTemplate
from tests.preload.programs import environment
from tests.support import PYTHON, wait_for
from watchreload.preload import inotify
from watchreload.preload.client import Template
from watchreload.preload.staleness import Fingerprint, lock_files


def bump(path: Path) -> None:
    """A new mtime, whatever the clock's granularity (no sleeping)."""
    later = os.stat(path).st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(later, later))


def ready_template(
    start_template: StartTemplate, project: Path, preload: list[str]
) -> tuple[Template, list[str], dict[str, str]]:
    site = project.parent / "site"
    argv, env = [PYTHON, "show.py"], environment(project / "out.json", site)
    template = start_template(argv, env, project, preload, stable_roots=[site])
    assert template.wait_ready(60), template.reason
    assert template.why_not(argv, env, str(project)) is None
    return template, argv, env


def stale_reason(template: Template) -> str:
    return wait_for(lambda: template.fingerprint.changed() or "", message="a staleness reason")


def test_touching_a_preloaded_site_file_makes_it_stale(
    project: Path, start_template: StartTemplate
) -> None:
    template, argv, env = ready_template(start_template, project, ["quiet"])
    bump(project.parent / "site" / "quiet.py")
    assert "quiet.py" in stale_reason(template)
    assert "quiet.py" in str(template.why_not(argv, env, str(project)))


def test_installing_into_a_site_directory_makes_it_stale(
    project: Path, start_template: StartTemplate
) -> None:
    template, _, _ = ready_template(start_template, project, ["quiet"])
    (project.parent / "site" / "newpkg-1.0.dist-info").mkdir()
    assert "newpkg-1.0.dist-info" in stale_reason(template)


def test_editing_pyproject_makes_it_stale_but_a_project_module_does_not(
    project: Path, start_template: StartTemplate
) -> None:
    template, _, _ = ready_template(start_template, project, ["quiet", "helper"])
    (project / "helper.py").write_text("VALUE = 3\n")
    (project / "new_module.py").write_text("")
    assert template.fingerprint.changed(full=True) is None
    with open(project / "pyproject.toml", "a") as f:
        f.write("dependencies = ['six']\n")
    assert "pyproject.toml" in stale_reason(template)


def test_a_new_lock_file_makes_it_stale(project: Path, start_template: StartTemplate) -> None:
    template, _, _ = ready_template(start_template, project, ["quiet"])
    (project / "uv.lock").write_text("")
    assert "uv.lock" in stale_reason(template)


def test_the_environment_counts_but_the_changes_variables_do_not(
    project: Path, start_template: StartTemplate
) -> None:
    template, argv, env = ready_template(start_template, project, ["quiet"])
    changes = dict(env, WATCHRELOAD_CHANGES="[]", WATCHRELOAD_CHANGES_FILE="/x")
    assert template.why_not(argv, changes, str(project)) is None
    reason = template.why_not(argv, dict(env, DJANGO_SETTINGS_MODULE="x"), str(project))
    assert reason == "the environment changed (DJANGO_SETTINGS_MODULE)"


def test_flags_debuggers_and_coverage_mean_exec(
    project: Path, start_template: StartTemplate
) -> None:
    template, argv, env = ready_template(start_template, project, ["quiet"])
    cwd = str(project)
    assert "flags differ" in str(template.why_not([PYTHON, "-O", "show.py"], env, cwd))
    assert "pdb" in str(template.why_not([PYTHON, "-m", "pdb", "show.py"], env, cwd))
    coverage = dict(env, COVERAGE_PROCESS_START="x")
    assert "COVERAGE_PROCESS_START" in str(template.why_not(argv, coverage, cwd))
    assert "-c code" in str(template.why_not([PYTHON, "-c", "pass"], env, cwd))
    assert "working directory" in str(template.why_not(argv, env, str(project.parent)))


def test_not_ready_while_preloading(project: Path, start_template: StartTemplate) -> None:
    site, gate = project.parent / "site", project.parent / "gate-open"
    argv = [PYTHON, "show.py"]
    env = environment(project / "out.json", site, PRELOAD_GATE=str(gate))
    template = start_template(argv, env, project, ["gate"], stable_roots=[site])
    assert template.why_not(argv, env, str(project)) == "the template is still preloading"
    gate.write_text("")
    assert template.wait_ready(60), template.reason


def test_a_template_that_died_says_so(project: Path, start_template: StartTemplate) -> None:
    template, argv, env = ready_template(start_template, project, ["quiet"])
    template.process.kill()
    template.process.wait(10)
    assert "no longer answers" in str(template.why_not(argv, env, str(project)))


@pytest.mark.parametrize("notify", [False, True], ids=["stat", "inotify"])
def test_fingerprint_files_and_locks(tmp_path: Path, notify: bool) -> None:
    if notify and not inotify.available():
        pytest.skip("inotify is Linux only")
    files = [tmp_path / f"m{i}.py" for i in range(20)]
    for path in files:
        path.write_text("x = 1\n")
    fingerprint = Fingerprint({"A": "1"}, inotify.Inotify() if notify else None)
    try:
        fingerprint.add("the preloaded file", [str(p) for p in files])
        fingerprint.add("the project file", lock_files([str(tmp_path)]))
        assert fingerprint.changed({"A": "1"}) is None
        assert fingerprint.changed({"A": "2"}) == "the environment changed (A)"
        bump(files[7])
        assert "m7.py" in str(fingerprint.changed())
    finally:
        fingerprint.close()


def test_fingerprint_catches_what_changed_before_the_watch(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("x = 1\n")
    earlier = os.stat(path)
    taken = (earlier.st_mtime_ns, earlier.st_ctime_ns, earlier.st_size, earlier.st_ino)
    path.write_text("x = 22\n")
    fingerprint = Fingerprint({}, None)
    fingerprint.add("the preloaded file", [str(path)], [taken])
    assert "m.py" in str(fingerprint.changed())


def test_lock_files_lists_requirements(tmp_path: Path) -> None:
    (tmp_path / "requirements-dev.txt").write_text("")
    found = {os.path.basename(p) for p in lock_files([str(tmp_path)])}
    assert {"pyproject.toml", "uv.lock", "poetry.lock", "Pipfile.lock"} <= found
    assert "requirements-dev.txt" in found
    assert sys.platform != "win32"
