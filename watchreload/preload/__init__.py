"""Fast restarts: a preloaded template process that forks the command instead of exec'ing it.

- launch.py: how a command starts Python (interpreter, flags, script or -m), or why it can't fork;
- template.py: the template's own main, run in the command's interpreter (standard library only,
  with origins.py, safety.py, child.py and staleness.py);
- client.py: the supervisor's side (`Template`; forked.py's `ForkedChild`), with inotify.py for
  staleness, reasons.py for the other reasons to exec, and verdict.py for crashes of forked
  children.

The supervisor imports `watchreload.preload.client`; this module imports nothing, so that the
template's modules stay importable on their own.
"""
