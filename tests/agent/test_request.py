"""Asking a real idle Python child for its report (agent/request.py and the bootstrap's handler)."""

from __future__ import annotations

import ast
import json
import signal
from pathlib import Path

from tests.agent.conftest import RunPython, Spawn
from tests.agent.test_bootstrap import BOOTSTRAP, reported
from tests.support import PYTHON, wait_for
from watchreload.agent import request
from watchreload.agent.channel import AgentChannel
from watchreload.procfs import catches_signal

IDLE = """
import time
import {module}
print("imported", flush=True)
time.sleep(600)  # idle until the test's cleanup kills it
"""


def test_the_bootstrap_and_the_requester_use_the_same_signal() -> None:
    tree = ast.parse(BOOTSTRAP.read_text())
    values = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id == "REPORT_SIGNAL_BELOW_MAX"
    ]
    assert values == [request.REPORT_SIGNAL_BELOW_MAX]


def test_an_idle_program_reports_when_asked(python: RunPython, channel: AgentChannel) -> None:
    main = python.write("main.py", IDLE.format(module="json"))
    process = python.start(main)
    wait_for(lambda: "imported" in process.output, message="the program's imports")
    signum = request.REPORT_SIGNAL
    assert signum is not None
    wait_for(lambda: catches_signal(process.pid, signum), message="the handler")
    assert not reported(channel, main, Path(json.__file__))  # idle: nothing sent by itself
    assert request.ask_for_report(process.pid)
    wait_for(lambda: reported(channel, main, Path(json.__file__)), message="the report")
    assert process.popen.poll() is None  # the signal did not end it
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_a_program_with_its_own_handler_keeps_it(python: RunPython, channel: AgentChannel) -> None:
    assert request.REPORT_SIGNAL is not None
    main = python.write(
        "main.py",
        "import signal\n"
        f"signal.signal({request.REPORT_SIGNAL}, lambda *a: print('mine', flush=True))\n"
        + IDLE.format(module="json"),
    )
    process = python.start(main)
    wait_for(lambda: "imported" in process.output, message="the program's imports")
    assert request.ask_for_report(process.pid)
    wait_for(lambda: "mine" in process.output, message="the program's own handler")
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_a_process_without_the_agent_is_not_signalled(spawn: Spawn) -> None:
    assert not catches_signal(1 << 22, signal.SIGTERM)  # no such pid
    process = spawn([PYTHON, "-S", "-c", "import time; print('up', flush=True); time.sleep(600)"])
    wait_for(lambda: "up" in process.output, message="the program")
    assert not request.ask_for_report(process.pid)
    assert process.popen.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
