"""The child agent: Python processes of the supervised command report what they import.

When the command runs a Python interpreter (`detect.is_python_command`), the supervisor puts
`bootstrap/` first on the child's PYTHONPATH. Its `sitecustomize.py`, imported by `site` in
every Python process of the child's tree, reports to `channel.AgentChannel` over a datagram
socket: the files of the imported modules, the files that failed to import, and the first
listening TCP address. A non-Python command gets nothing added and runs exactly as without it.

For the supervisor (once process.py and settings.py have landed; `agent` is the setting that
`--no-agent` turns off):

    channel = AgentChannel() if settings.agent else None
    if channel: channel.start_reader()
    ...
    def start_child(changes):
        env = without_agent(base_env)            # nothing left over from an outer watchreload
        if channel:
            env |= channel.start_run(command, env, shell=shell)   # {} unless Python; new run id
        spawn(command, env)
    ... channel.imported_files() | channel.failed_files()   # what the current start depends on
    ... channel.listening(), channel.listening_seen_at()  # readiness
    finally: channel.close()

Supported child interpreters: CPython 3.7 and newer (and PyPy 3); Python 3.6 and 2 print
"Error in sitecustomize" once and run without the agent. `python -S`, `-I` and `-E` ignore
PYTHONPATH, so they run without it too.
"""

from watchreload.agent.channel import AgentChannel, environment_for, without_agent
from watchreload.agent.detect import is_python_command

__all__ = ["AgentChannel", "environment_for", "is_python_command", "without_agent"]
