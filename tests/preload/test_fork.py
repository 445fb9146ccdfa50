"""A forked child is indistinguishable from an exec'd one: real templates, real children.

Each test runs the command the ordinary way and from a template, and compares what both wrote
(tests/preload/programs.py). The fake site directory `site/` is declared a stable root, so that
its modules are preloaded like site-packages ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.preload.conftest import StartTemplate, alive, kill_quietly, run_exec, started_pid
from tests.preload.programs import comparable, environment, read_observed, write_django_project
from tests.support import PYTHON, Spawned, wait_for
from watchreload.preload.client import ForkedChild, Template


def text_of(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def ready(template: Template) -> Template:
    assert template.wait_ready(60), template.reason
    return template


def fork(
    template: Template, argv: list[str], env: dict[str, str], cwd: Path, forked: list[ForkedChild]
) -> ForkedChild:
    child = template.fork(argv, env, str(cwd))
    forked.append(child)
    return child


@pytest.mark.parametrize("command", [["show.py", "x"], ["-m", "pkg", "x"]], ids=["script", "-m"])
def test_a_forked_child_sees_what_an_execd_one_sees(
    command: list[str], project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, *command], environment(project / "out.json", site)
    assert run_exec(argv, env, project) == 0
    execd = read_observed(out)
    # The previous run's modules, as the agent will report them: project ones included.
    template = ready(start_template(argv, env, project, execd["modules"], stable_roots=[site]))
    assert "helper" in template.report["refused"]
    env_changes = dict(env, WATCHRELOAD_CHANGES='["/x"]')
    assert fork(template, argv, env_changes, project, forked).wait(60) == 0
    seen = read_observed(out)
    assert comparable(seen) == comparable(dict(execd, env=seen["env"]))
    assert seen["env"]["WATCHRELOAD_CHANGES"] == '["/x"]'
    assert "helper" in seen["modules"]  # imported fresh by the child


def test_manage_py_check_from_a_template(
    tmp_path: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    site = tmp_path / "nosite"
    site.mkdir()
    root = write_django_project(tmp_path / "dj")
    out = tmp_path / "out.json"
    argv, env = [PYTHON, "manage.py", "check"], environment(out, site)
    assert run_exec(argv, env, root) == 0
    execd = read_observed(out)
    template = ready(start_template(argv, env, root, execd["modules"]))
    assert any("/django/" in path for path, _ in template.report["files"])
    assert "mysite" in template.report["refused"]  # so mysite.settings never got in
    assert fork(template, argv, env, root, forked).wait(60) == 0
    seen = read_observed(out)
    assert comparable(seen) == comparable(execd)
    assert "mysite.settings" in seen["modules"]


def test_an_edited_project_module_is_seen_by_the_next_child(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, "show.py"], environment(out, site)
    template = ready(start_template(argv, env, project, ["helper", "quiet", "json"]))
    assert fork(template, argv, env, project, forked).wait(60) == 0
    assert Path(f"{out}.helper").read_text() == "1"
    helper = project / "helper.py"
    helper.write_text("VALUE = 2\n")
    later = os.stat(helper).st_mtime_ns + 2_000_000_000  # a new mtime, whatever the clock
    os.utime(helper, ns=(later, later))
    assert template.why_not(argv, env, str(project)) is None  # the watched roots never stale it
    assert fork(template, argv, env, project, forked).wait(60) == 0
    assert Path(f"{out}.helper").read_text() == "2"


def test_random_differs_between_two_children(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, "show.py"], environment(out, site)
    template = ready(start_template(argv, env, project, ["random", "json"]))
    values = []
    for _ in range(2):
        assert fork(template, argv, env, project, forked).wait(60) == 0
        values.append(read_observed(out)["random"])
    assert values[0] != values[1]


@pytest.mark.parametrize(
    ("args", "signum"),
    [(["3"], None), (["raise"], None), (["wait"], signal.SIGTERM), (["wait"], signal.SIGINT)],
    ids=["exit-3", "exception", "SIGTERM", "SIGINT"],
)
def test_exit_statuses_and_signals_are_those_of_exec(
    args: list[str],
    signum: signal.Signals | None,
    project: Path,
    start_template: StartTemplate,
    forked: list[ForkedChild],
) -> None:
    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, "show.py", *args], environment(out, site)
    process = subprocess.Popen(argv, env=env, cwd=project, process_group=0, stderr=subprocess.PIPE)
    try:
        if signum is not None:
            os.killpg(started_pid(out), signum)
        _, execd_err = process.communicate(timeout=60)
    finally:
        kill_quietly(process.pid, group=True)
    execd = comparable(read_observed(out)) if out.exists() else None  # no atexit on SIGTERM
    template = ready(start_template(argv, env, project, ["json", "signal"]))
    child = fork(template, argv, env, project, forked)
    if signum is not None:
        assert started_pid(out) == child.pid
        assert child.stop(signum, timeout_s=30) == process.returncode
    else:
        assert child.wait(60) == process.returncode
    assert (comparable(read_observed(out)) if out.exists() else None) == execd
    assert process.returncode == {"3": 3, "raise": 1, "wait": -(signum or 0)}[args[0]]
    assert b"failing on purpose" in execd_err or args[0] != "raise"


def test_stopping_a_forked_child_stops_its_group(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, "family.py"], environment(out, site)
    template = ready(start_template(argv, env, project, ["subprocess"]))
    child = fork(template, argv, env, project, forked)
    text = wait_for(lambda: text_of(out), message="the family's pids")
    pid, grandchild = map(int, text.split())
    assert pid == child.pid and alive(grandchild)
    assert child.stop(signal.SIGTERM, timeout_s=30) == -signal.SIGTERM
    wait_for(lambda: not alive(grandchild), message="the grandchild to be gone")
    assert not child.running()


CLIENT = """\
import os, signal, sys
from watchreload.preload.client import Template
project, out = sys.argv[1], sys.argv[2]
env = dict(os.environ, PRELOAD_OUT=out)
argv = [sys.executable, "family.py"]
template = Template.for_command(argv, env, project, ["subprocess"])
assert template.wait_ready(60), template.reason
child = template.fork(argv, env, project)
print("template", template.pid, flush=True)
signal.pause()
"""


def test_sigkill_of_the_client_leaves_no_template_and_no_child(
    project: Path, spawn: Callable[..., Spawned]
) -> None:
    out = project / "out.json"
    client = spawn([PYTHON, "-c", CLIENT, str(project), str(out)], cwd=os.getcwd())
    text = wait_for(lambda: text_of(out), timeout_s=60, message="the pids")
    child, grandchild = map(int, text.split())
    line = wait_for(lambda: client.output if "template" in client.output else "", message="pid")
    template = int(line.split()[1])
    assert all(alive(p) for p in (template, child, grandchild))
    client.popen.kill()
    client.wait()
    wait_for(
        lambda: not any(alive(p) for p in (template, child, grandchild)),
        message="the template, the child and the grandchild to be gone",
    )


def test_a_module_that_starts_a_thread_or_opens_a_socket_is_named_and_left_out(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, "show.py"], environment(out, site)
    template = start_template(
        argv, env, project, ["quiet", "threader", "sockopener", "json"], stable_roots=[site]
    )
    assert not template.wait_ready(60)
    assert template.state == "unsafe"
    assert set(template.culprits) == {"threader", "sockopener"}
    assert "thread" in template.culprits["threader"]
    assert "socket" in template.culprits["sockopener"]
    reason = template.why_not(argv, env, str(project))
    assert reason is not None and "threader" in reason
    rebuilt = template.without_culprits()
    assert rebuilt is not None
    try:
        ready(rebuilt)
        child = rebuilt.fork(argv, env, str(project))
        forked.append(child)
        assert child.wait(60) == 0
        modules = read_observed(out)["modules"]
        assert "quiet" in modules and "threader" not in modules and "sockopener" not in modules
    finally:
        rebuilt.close()
    assert not alive(rebuilt.pid)


def test_the_module_that_starts_the_thread_is_blamed_not_its_importer(
    project: Path, start_template: StartTemplate
) -> None:
    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, "show.py"], environment(out, site)
    template = start_template(argv, env, project, ["usesthreader", "json"], stable_roots=[site])
    assert not template.wait_ready(60)
    assert set(template.culprits) == {"threader"}
    rebuilt = template.without_culprits()
    assert rebuilt is not None
    try:
        ready(rebuilt)  # the importer cannot bring the thread back: threader is refused to it
        preloaded = [path for path, _ in rebuilt.report["files"]]
        assert not [p for p in preloaded if p.endswith(("threader.py", "usesthreader.py"))]
        assert "json" in " ".join(preloaded)
    finally:
        rebuilt.close()


def test_the_template_runs_the_commands_interpreter_with_its_flags(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, "-X", "dev", "-W", "error", "show.py"], environment(out, site)
    assert run_exec(argv, env, project) == 0
    execd = read_observed(out)
    template = ready(start_template(argv, env, project, ["json"]))
    assert fork(template, argv, env, project, forked).wait(60) == 0
    assert comparable(read_observed(out)) == comparable(execd)
    assert "dev_mode=True" in execd["flags"]
    plain = [sys.executable, "show.py"]
    assert "flags differ" in str(template.why_not(plain, env, str(project)))


def test_project_modules_that_slip_in_are_purged_namespace_packages_too(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    out, site = project / "out.json", project.parent / "site"
    (project / "nsdir").mkdir()
    (project / "nsdir" / "inner.py").write_text("VALUE = 1\n")
    argv, env = [PYTHON, "show.py"], environment(out, site)
    template = ready(
        start_template(argv, env, project, ["touchy", "sneaky", "json"], stable_roots=[site])
    )
    assert "nsdir" in template.report["refused"]  # the blocker: no namespace package for nsdir/
    # touchy caught the refusal: it may have cached that nsdir is missing, so it was undone.
    assert template.report["undone"] == {"touchy": ["nsdir"]}
    assert "helper" in template.report["purged"]  # loaded behind the import system's back
    assert fork(template, argv, env, project, forked).wait(60) == 0
    modules = read_observed(out)["modules"]
    assert "sneaky" in modules and "nsdir" not in modules and "touchy" not in modules


@pytest.mark.parametrize("outcome", ["passed", "failed"])
def test_pytest_runs_from_a_template(
    outcome: str, tmp_path: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    """A console script (#! to the venv's python): pytest itself, observed by a conftest."""
    from tests.preload.programs import OBSERVE

    (tmp_path / "conftest.py").write_text(OBSERVE)
    (tmp_path / "test_it.py").write_text(f"def test_it():\n    assert {outcome == 'passed'}\n")
    out = tmp_path / "out.json"
    argv = [str(Path(PYTHON).parent / "pytest"), "-q", "-p", "no:cacheprovider", "test_it.py"]
    env = {k: v for k, v in environment(out, tmp_path).items() if not k.startswith("PYTEST")}
    code = run_exec(argv, env, tmp_path)
    assert code == (0 if outcome == "passed" else 1)
    execd = read_observed(out)
    template = start_template(argv, env, tmp_path, execd["modules"])
    assert template.wait_ready(60), template.reason
    assert "conftest" in template.report["refused"] or "conftest" not in execd["modules"]
    assert fork(template, argv, env, tmp_path, forked).wait(60) == code
    seen = read_observed(out)
    assert comparable(seen) == comparable(execd)


def test_a_stopped_child_is_reported_for_job_control(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, "show.py", "wait"], environment(out, site)
    template = ready(start_template(argv, env, project, ["json"]))
    child = fork(template, argv, env, project, forked)
    assert started_pid(out) == child.pid
    child.send_signal(signal.SIGTSTP)
    wait_for(lambda: child.stopped_by() == signal.SIGTSTP, message="the stop to be reported")
    child.send_signal(signal.SIGCONT)
    wait_for(lambda: child.stopped_by() is None, message="the continue to be reported")
    assert child.stop(signal.SIGTERM, timeout_s=30) == -signal.SIGTERM


BUILDING_CLIENT = """\
import os, signal, sys
from watchreload.preload.client import Template
project, gate, site = sys.argv[1], sys.argv[2], sys.argv[3]
env = dict(os.environ, PRELOAD_GATE=gate, PYTHONPATH=site)
argv = [sys.executable, "show.py"]
template = Template.for_command(argv, env, project, ["gate"], stable_roots=[site])
print("template", template.pid, flush=True)
signal.pause()
"""


def test_sigkill_of_the_client_while_the_template_preloads_leaves_no_template(
    project: Path, spawn: Callable[..., Spawned]
) -> None:
    gate, site = project.parent / "never-opened", project.parent / "site"
    args = [PYTHON, "-c", BUILDING_CLIENT, str(project), str(gate), str(site)]
    client = spawn(args, cwd=os.getcwd())
    line = wait_for(lambda: client.output if "template" in client.output else "", message="pid")
    template = int(line.split()[1])
    client.popen.kill()
    client.wait()
    wait_for(lambda: not alive(template), message="the preloading template to be gone")


def test_preloaded_modules_saw_the_commands_argv_at_import(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    out, site = project / "out.json", project.parent / "site"
    (project / "argv.py").write_text(
        "import os, argvcap\nopen(os.environ['PRELOAD_OUT'], 'w').write(repr(argvcap.ARGV))\n"
    )
    argv, env = [PYTHON, "argv.py", "--flag"], environment(out, site)
    assert run_exec(argv, env, project) == 0
    execd = out.read_text()
    template = ready(start_template(argv, env, project, ["argvcap"], stable_roots=[site]))
    assert fork(template, argv, env, project, forked).wait(60) == 0
    assert out.read_text() == execd == repr(["argv.py", "--flag"])


def test_runserver_noreload_listens_from_a_template_and_stops_as_with_exec(
    tmp_path: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    import socket

    site = tmp_path / "nosite"
    site.mkdir()
    root = write_django_project(tmp_path / "dj")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    argv = [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    env = environment(tmp_path / "out.json", site)
    process = subprocess.Popen(argv, env=env, cwd=root, process_group=0)
    try:
        wait_for(listening, timeout_s=60, message="the exec'd server to listen")
        os.killpg(process.pid, signal.SIGINT)
        execd = process.wait(60)
    finally:
        kill_quietly(process.pid, group=True)
    preload = read_observed(tmp_path / "out.json")["modules"]
    template = ready(start_template(argv, env, root, preload))
    child = fork(template, argv, env, root, forked)
    wait_for(listening, timeout_s=60, message="the forked server to listen")
    assert child.stop(signal.SIGINT, timeout_s=30) == execd
    assert not listening()


def test_the_agent_reports_a_forked_child_as_it_reports_an_execd_one(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    from watchreload.agent.channel import AgentChannel

    out, site = project / "out.json", project.parent / "site"
    argv, base = [PYTHON, "show.py"], environment(out, site)
    main_file = project / "show.py"

    def reported(channel: AgentChannel) -> set[Path]:
        channel.drain()
        files = channel.imported_files()
        return files if main_file in files else set()

    with AgentChannel() as channel:
        env = dict(base, **channel.start_run(argv, base))
        assert run_exec(argv, env, project) == 0
        execd = wait_for(lambda: reported(channel), message="the exec'd child's report")
        execd_seen = comparable(read_observed(out))
        env = dict(base, **channel.start_run(argv, base))
        template = ready(start_template(argv, env, project, ["json", "quiet"], stable_roots=[site]))
        template_files = [path for path, _ in template.report["files"]]
        assert not [p for p in template_files if "sitecustomize" in p]  # no agent in it
        assert fork(template, argv, env, project, forked).wait(60) == 0
        files = wait_for(lambda: reported(channel), message="the forked child's report")
        assert {p for p in execd if "/agent/" not in str(p)} <= files
        assert project / "helper.py" in files and site / "quiet.py" not in execd
        seen = comparable(read_observed(out))
    assert seen == dict(execd_seen, env=seen["env"])
    assert seen["env"]["WATCHRELOAD_AGENT_RUN"] == "2"


def test_a_signal_right_after_the_fork_meets_the_default_disposition(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, "show.py", "wait"], environment(out, site)
    template = ready(start_template(argv, env, project, ["json"]))
    for _ in range(5):
        child = fork(template, argv, env, project, forked)
        child.send_signal(signal.SIGTERM)  # blocked in the template until the child is set up
        assert child.wait(60) == -signal.SIGTERM


def test_the_agents_files_are_preloaded_as_modules(
    project: Path, start_template: StartTemplate, forked: list[ForkedChild]
) -> None:
    import json

    out, site = project / "out.json", project.parent / "site"
    argv, env = [PYTHON, "show.py"], environment(out, site)
    files = [str(site / "quiet.py"), str(project / "helper.py"), str(json.__file__)]
    template = start_template(argv, env, project, [], preload_files=files, stable_roots=[site])
    ready(template)
    assert template.report["refused"] == ["helper"]
    assert fork(template, argv, env, project, forked).wait(60) == 0
    assert "quiet" in read_observed(out)["modules"]  # show.py does not import it: preloaded
