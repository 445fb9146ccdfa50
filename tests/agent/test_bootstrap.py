"""The bootstrap sitecustomize in real Python children, reporting to a real AgentChannel."""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
from pathlib import Path

from tests.agent.conftest import RunPython
from tests.support import PYTHON, wait_for
from watchreload.agent import channel as channel_module
from watchreload.agent.channel import BOOTSTRAP_DIR, REPORT_FILE, AgentChannel

BOOTSTRAP = BOOTSTRAP_DIR / "sitecustomize.py"
MAX_MODULE_LINES = 400


def reported(channel: AgentChannel, *paths: Path) -> bool:
    return {p.resolve() for p in paths} <= {p.resolve() for p in channel.imported_files()}


def failed(channel: AgentChannel, *paths: Path) -> bool:
    return {p.resolve() for p in paths} <= {p.resolve() for p in channel.failed_files()}


def test_the_bootstrap_directory_holds_only_the_bootstrap() -> None:
    assert sorted(p.name for p in BOOTSTRAP_DIR.iterdir() if p.name != "__pycache__") == [
        "sitecustomize.py"
    ]


def test_the_agent_modules_keep_to_the_line_cap() -> None:
    for source in (BOOTSTRAP, REPORT_FILE):
        assert len(source.read_text().splitlines()) <= MAX_MODULE_LINES, source


def test_the_bootstrap_loads_the_report_module_by_its_path() -> None:
    tree = ast.parse(BOOTSTRAP.read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name.startswith("watchreload") for name in imported)  # works uninstalled
    assert "_report.py" in BOOTSTRAP.read_text()


def test_the_bootstrap_and_the_channel_speak_the_same_protocol() -> None:
    tree = ast.parse(REPORT_FILE.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert constants["PROTOCOL_VERSION"] == channel_module.PROTOCOL_VERSION
    assert constants["SOCKET_ENV"] == channel_module.SOCKET_ENV
    assert constants["RUN_ENV"] == channel_module.RUN_ENV


def test_the_bootstrap_imports_nothing_but_builtins(python: RunPython) -> None:
    probe = python.write(
        "probe.py",
        """
        import json, sys
        print(json.dumps(sorted(sys.modules)))
        """,
    )
    env = python.environment()
    plain = python.spawn([PYTHON, str(probe)], env=channel_module.without_agent(env))
    assert plain.wait() == 0, plain.output
    process = python.spawn([PYTHON, str(probe)], env=env)
    assert process.wait() == 0, process.output
    added = set(json.loads(process.output)) - set(json.loads(plain.output))
    # atexit, gc, time are built into the interpreter; _socket is a small C extension module.
    assert added <= {
        "_watchreload_agent",
        "sitecustomize",
        "__future__",
        "atexit",
        "gc",
        "time",
    } | {"_socket"}


def test_imported_files_are_reported_with_main(python: RunPython, channel: AgentChannel) -> None:
    python.write("pkg/__init__.py", "")
    module = python.write("pkg/mod.py", "VALUE = 1\n")
    main = python.write(
        "main.py",
        """
        import json
        import pkg.mod
        print(pkg.mod.VALUE)
        """,
    )
    process = python.run(main)
    assert process.popen.returncode == 0, process.output
    json_file = Path(json.__file__)
    wait_for(lambda: reported(channel, main, module, json_file), message="main, pkg.mod, json")
    assert failed(channel) and not channel.failed_files()
    assert BOOTSTRAP not in channel.imported_files()
    assert channel.reporting_pids() == {process.pid}
    assert channel.listening() is None


def test_many_imports_arrive_in_several_datagrams(python: RunPython, channel: AgentChannel) -> None:
    names = [f"module_with_a_rather_long_name_to_fill_datagrams_{i:04d}" for i in range(600)]
    for name in names:
        python.write(f"many/{name}.py", "")
    main = python.write(
        "main.py",
        "import sys\nsys.path.insert(0, 'many')\n" + "".join(f"import {n}\n" for n in names),
    )
    process = python.run(main)
    assert process.popen.returncode == 0, process.output
    files = [python.directory / "many" / f"{n}.py" for n in names]
    wait_for(lambda: reported(channel, main, *files), message="all 600 modules")
    assert channel.skipped == 0


def test_a_syntax_error_at_start_is_reported_as_failed(
    python: RunPython, channel: AgentChannel
) -> None:
    broken = python.write("broken.py", "def f(:\n")
    main = python.write("main.py", "import broken\n")
    process = python.run(main)
    assert process.popen.returncode == 1
    assert "SyntaxError" in process.output
    wait_for(lambda: failed(channel, broken), message="broken.py reported as failed")
    wait_for(lambda: reported(channel, main), message="main.py reported")
    assert broken.resolve() not in {p.resolve() for p in channel.imported_files()}


def test_an_uncaught_error_at_import_is_reported_as_failed(
    python: RunPython, channel: AgentChannel
) -> None:
    python.write("app/__init__.py", "")
    bad = python.write("app/views.py", "import os\nundefined_name\n")
    main = python.write("main.py", "import app.views\n")
    process = python.run(main)
    assert process.popen.returncode == 1
    assert "NameError" in process.output
    wait_for(lambda: failed(channel, bad), message="app/views.py reported as failed")
    assert {p.name for p in channel.failed_files()} == {"views.py"}


def test_a_caught_import_error_is_reported_and_a_missing_module_is_not(
    python: RunPython, channel: AgentChannel
) -> None:
    broken = python.write("broken.py", "import os\nraise RuntimeError('at import')\n")
    main = python.write(
        "main.py",
        """
        import importlib.util
        try:
            import broken
        except RuntimeError:
            pass
        try:
            import no_such_module_here
        except ImportError:
            pass
        assert importlib.util.find_spec("probed") is not None  # a probe, not an import
        """,
    )
    python.write("probed.py", "")
    process = python.run(main)
    assert process.popen.returncode == 0, process.output
    wait_for(lambda: failed(channel, broken), message="broken.py reported as failed")
    wait_for(lambda: reported(channel, main), message="main.py reported")
    assert {p.name for p in channel.failed_files()} == {"broken.py"}
    assert "probed.py" not in {p.name for p in channel.imported_files()}


def test_a_fixed_module_moves_from_failed_to_imported(
    python: RunPython, channel: AgentChannel
) -> None:
    flaky = python.write("flaky.py", "def f(:\n")
    go = python.directory / "go"
    main = python.write(
        "main.py",
        f"""
        import importlib, os, sys, time
        try:
            import flaky
        except SyntaxError:
            pass
        sys.modules["_watchreload_agent"].agent.flush()
        deadline = time.monotonic() + 30
        while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
            time.sleep(0.01)
        with open("flaky.py", "w") as f:
            f.write("OK = True\\n")
        importlib.invalidate_caches()
        import flaky
        """,
    )
    process = python.start(main)
    wait_for(lambda: failed(channel, flaky), message="flaky.py reported as failed")
    go.touch()
    assert process.wait() == 0, process.output
    wait_for(lambda: reported(channel, flaky), message="flaky.py imported after the fix")
    assert not channel.failed_files()


def test_the_first_listening_address_is_reported(python: RunPython, channel: AgentChannel) -> None:
    server = python.write(
        "server.py",
        """
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        other = socket.socket()
        other.bind(("127.0.0.1", 0))
        other.listen()
        checks = [
            "listen" not in vars(socket.socket),
            type(socket.__loader__).__name__ == "SourceFileLoader",
            socket.__spec__.loader is socket.__loader__,
        ]
        print(s.getsockname()[1], other.getsockname()[1], all(checks), flush=True)
        s.settimeout(30)
        connection, _ = s.accept()
        """,
    )
    process = python.start(server)
    words = wait_for(lambda: process.output.split(), message="the server's ports")
    port, _other, checks = int(words[0]), words[1], words[2]
    assert checks == "True", process.output
    assert wait_for(channel.listening, message="the listening address") == ("127.0.0.1", port)
    assert channel.listening_seen_at() is not None
    with socket.create_connection(("127.0.0.1", port), timeout=10):
        pass
    assert process.wait() == 0, process.output
    assert channel.listening() == ("127.0.0.1", port)  # the first one, not the second
    wait_for(lambda: reported(channel, server), message="server.py reported")


def test_a_subprocess_grandchild_reports(python: RunPython, channel: AgentChannel) -> None:
    grandchild_module = python.write("grandmod.py", "")
    grandchild = python.write("grandchild.py", "import grandmod\n")
    main = python.write(
        "main.py",
        """
        import subprocess, sys
        subprocess.run([sys.executable, "grandchild.py"], check=True, timeout=60)
        """,
    )
    process = python.run(main)
    assert process.popen.returncode == 0, process.output
    wait_for(
        lambda: reported(channel, main, grandchild, grandchild_module),
        message="the grandchild's modules",
    )
    assert len(channel.reporting_pids()) == 2


def test_a_multiprocessing_spawn_child_reports(python: RunPython, channel: AgentChannel) -> None:
    spawned_module = python.write("spawnedmod.py", "")
    main = python.write(
        "main.py",
        """
        import multiprocessing

        def work():
            import spawnedmod

        if __name__ == "__main__":
            process = multiprocessing.get_context("spawn").Process(target=work)
            process.start()
            process.join(60)
            raise SystemExit(process.exitcode)
        """,
    )
    process = python.run(main)
    assert process.popen.returncode == 0, process.output
    wait_for(lambda: reported(channel, main, spawned_module), message="the spawned child's module")
    # multiprocessing's resource tracker ends on its own once the main process has gone.
    wait_for(lambda: not process.session_members(), message="the resource tracker to end")
    assert len(channel.reporting_pids()) >= 2


def test_the_users_sitecustomize_still_runs(python: RunPython, channel: AgentChannel) -> None:
    first = python.directory / "first"
    second = python.directory / "second"
    user_site = python.write(
        "second/sitecustomize.py",
        """
        import os
        os.environ["USER_SITECUSTOMIZE_RAN"] = "yes"
        """,
    )
    first.mkdir(exist_ok=True)
    probe = python.write(
        "probe.py",
        """
        import json, os, sys
        print(json.dumps({
            "ran": os.environ.get("USER_SITECUSTOMIZE_RAN"),
            "sitecustomize": sys.modules["sitecustomize"].__file__,
            "path": sys.path,
            "PYTHONPATH": os.environ["PYTHONPATH"],
            "finders": [repr(f) for f in sys.meta_path],
        }))
        """,
    )
    process = python.run(probe, PYTHONPATH=os.pathsep.join([str(first), str(second)]))
    assert process.popen.returncode == 0, process.output
    seen = json.loads(process.output.splitlines()[-1])
    assert seen["ran"] == "yes"
    assert Path(seen["sitecustomize"]) == user_site
    assert str(BOOTSTRAP_DIR) not in seen["path"]
    assert seen["path"][1:3] == [str(first), str(second)]  # [0] is the script's directory
    assert seen["PYTHONPATH"] == os.pathsep.join([str(BOOTSTRAP_DIR), str(first), str(second)])
    assert seen["finders"][0] == "<watchreload agent finder>"
    wait_for(lambda: reported(channel, user_site, probe), message="the user's sitecustomize")


def test_without_a_receiver_the_program_runs_as_usual(python: RunPython, tmp_path: Path) -> None:
    main = python.write("main.py", "import json\nprint('done')\n")
    env = python.environment()
    env[channel_module.SOCKET_ENV] = str(tmp_path / "nobody-listens.sock")
    process = python.spawn([PYTHON, str(main)], env=env)
    assert process.wait() == 0
    assert process.output == "done\n"


def test_without_the_socket_variable_the_agent_stays_out(python: RunPython) -> None:
    probe = python.write(
        "probe.py",
        "import sys\nprint(any('watchreload agent' in repr(f) for f in sys.meta_path))\n",
    )
    env = python.environment()
    del env[channel_module.SOCKET_ENV]
    process = python.spawn([PYTHON, str(probe)], env=env)
    assert process.wait() == 0
    assert process.output == "False\n"


def test_a_report_from_an_earlier_start_is_ignored(
    python: RunPython, channel: AgentChannel
) -> None:
    main = python.write("main.py", "import json\n")
    env = python.environment()
    channel.start_run([PYTHON], env)  # the next start begins before the old child reports
    process = python.spawn([PYTHON, str(main)], env=env)
    assert process.wait() == 0
    fresh = python.run(main)
    assert fresh.popen.returncode == 0
    wait_for(lambda: reported(channel, main), message="the current start's report")
    assert channel.reporting_pids() == {fresh.pid}


def test_a_fork_child_reports_with_its_own_pid(python: RunPython, channel: AgentChannel) -> None:
    forked_module = python.write("forkedmod.py", "")
    main = python.write(
        "main.py",
        """
        import os, sys
        pid = os.fork()
        if pid == 0:
            import forkedmod
            sys.exit(0)  # atexit runs: the child's last report goes out
        _, status = os.waitpid(pid, 0)
        raise SystemExit(os.waitstatus_to_exitcode(status))
        """,
    )
    process = python.run(main)
    assert process.popen.returncode == 0, process.output
    wait_for(lambda: reported(channel, main, forked_module), message="the fork child's module")
    assert len(channel.reporting_pids()) == 2
    assert channel.skipped == 0  # the kernel's pid is the child's, as the report says


def test_importing_the_bootstrap_by_its_package_name_does_nothing(python: RunPython) -> None:
    probe = python.write(
        "probe.py",
        """
        import sys
        before = (list(sys.meta_path), sys.modules.get("sitecustomize"), sys.excepthook)
        import watchreload.agent.bootstrap.sitecustomize
        after = (list(sys.meta_path), sys.modules.get("sitecustomize"), sys.excepthook)
        print(before == after)
        """,
    )
    env = channel_module.without_agent(python.environment())  # no bootstrap on PYTHONPATH...
    env[channel_module.SOCKET_ENV] = str(python.directory / "agent.sock")  # ...but the variables
    env[channel_module.RUN_ENV] = "1"
    process = python.spawn([PYTHON, str(probe)], env=env)
    assert process.wait() == 0, process.output
    assert process.output == "True\n"


def test_the_bootstrap_finds_its_report_module_next_to_it_without_watchreload(
    python: RunPython, channel: AgentChannel, tmp_path: Path
) -> None:
    copy = tmp_path / "copy" / "agent"
    (copy / "bootstrap").mkdir(parents=True)
    shutil.copy(BOOTSTRAP, copy / "bootstrap" / "sitecustomize.py")
    shutil.copy(REPORT_FILE, copy / "_report.py")
    main = python.write(
        "main.py",
        """
        import sys
        sys.modules.pop("watchreload", None)
        print(getattr(sys.modules["_watchreload_agent"], "__file__", None))
        """,
    )
    env = python.environment()
    env["PYTHONPATH"] = str(copy / "bootstrap")
    # The venv still has watchreload, but the copy's bootstrap loads the copy's _report.py.
    process = python.spawn([PYTHON, str(main)], env=env, cwd=tmp_path)
    assert process.wait() == 0, process.output
    assert process.output.strip() == str(copy / "bootstrap" / "sitecustomize.py")
    wait_for(lambda: reported(channel, main), message="main.py, reported by the copy")
