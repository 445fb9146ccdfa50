"""The child agent: Python processes of the supervised command report what they import.

When the command runs a Python interpreter (`detect.is_python_command`), the supervisor puts
`bootstrap/` first on the child's PYTHONPATH. Its `sitecustomize.py`, imported by `site` in
every Python process of the child's tree, reports to `channel.AgentChannel` over a datagram
socket: the files of the imported modules, the files that failed to import, and the first
listening TCP address. A non-Python command gets nothing added and runs exactly as without it.

Command mode wires it in through `mode.py` (the channel, opened for a Python command when the
setting `agent` is on) and `supervised.py` (`ChildSupport`, the supervisor's hooks: the
environment of each start, the scope of a batch, the modules outside the roots, the ready line).
The bootstrap loads `_report.py`, next to this file, by its path.

Supported child interpreters: CPython 3.7 and newer (and PyPy 3); Python 3.6 and 2 print
"Error in sitecustomize" once and run without the agent. `python -S`, `-I` and `-E` ignore
PYTHONPATH, so they run without it too.
"""

from watchreload.agent.channel import AgentChannel, environment_for, without_agent
from watchreload.agent.detect import is_python_command

__all__ = ["AgentChannel", "environment_for", "is_python_command", "without_agent"]
