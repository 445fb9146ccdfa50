"""Programs the preload tests run, written into a temporary project, and a fake site directory.

`show.py` (and `pkg/__main__.py`, and the snippet put in a Django `manage.py`) write what a child
can observe about how it was started to the file named by PRELOAD_OUT: the same for an exec'd
and a forked child, but for the few fields listed in `DIFFERENT`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# Written at the top of every program: records the observations at exit (atexit), so that a
# Django manage.py records them too, after its own work.
OBSERVE = """\
import atexit as _atexit, sys as _sys

def _observe():
    import gc, json, os, signal, random
    main = _sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    handlers = {}
    for signum in signal.valid_signals():
        try:
            handler = signal.getsignal(signum)
        except (OSError, ValueError):
            continue
        if handler is not signal.SIG_DFL:
            handlers[int(signum)] = getattr(handler, "__name__", str(handler))
    seen = {
        "argv": _sys.argv,
        "orig_argv": _sys.orig_argv,
        "executable": _sys.executable,
        "file": getattr(main, "__file__", None),
        "spec": None if spec is None else [spec.name, spec.origin, spec.parent],
        "package": getattr(main, "__package__", None),
        "cached": getattr(main, "__cached__", None),
        "loader": type(getattr(main, "__loader__", None)).__name__,
        "main_names": sorted(n for n in vars(main) if n.startswith("__")),
        "path0": _sys.path[0],
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("PRELOAD_", "WATCHRELOAD_"))},
        "own_group": os.getpgid(0) == os.getpid(),
        "session": os.getsid(0),
        "signals": handlers,
        "mask": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "gc": gc.isenabled(),
        "flags": str(_sys.flags),
        "random": random.random(),
        "pid": os.getpid(),
        "modules": list(_sys.modules),
    }
    with open(os.environ["PRELOAD_OUT"], "w") as f:
        json.dump(seen, f)

_atexit.register(_observe)
"""

# Fields that differ between any two children, exec'd or forked.
DIFFERENT = ("random", "pid", "modules")

SHOW = (
    OBSERVE
    + """
import os, sys, signal
import helper
with open(os.environ["PRELOAD_OUT"] + ".helper", "w") as f:
    f.write(str(helper.VALUE))
if len(sys.argv) > 1 and sys.argv[1] == "wait":
    with open(os.environ["PRELOAD_OUT"] + ".started", "w") as f:
        f.write(str(os.getpid()))
    signal.pause()
if len(sys.argv) > 1 and sys.argv[1] == "raise":
    raise RuntimeError("failing on purpose")
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 0)
"""
)

# A child that starts a grandchild in its own group and writes both pids, then waits.
FAMILY = """\
import os, subprocess, sys, signal
sleeper = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
with open(os.environ["PRELOAD_OUT"], "w") as f:
    f.write(f"{os.getpid()} {sleeper.pid}")
signal.pause()
"""

# Fake site-packages modules (the tests declare their directory a stable root).
SITE_MODULES = {
    "quiet.py": "VALUE = 1\n",
    "argvcap.py": "import sys\nARGV = list(sys.argv)\n",
    "threader.py": (
        "import threading\n"
        "_stop = threading.Event()\n"
        "threading.Thread(target=_stop.wait, name='threader', daemon=True).start()\n"
    ),
    "sockopener.py": "import socket\nSOCK = socket.socket()\n",
    "usesthreader.py": "import threader\n",  # innocent itself: the thread is threader's
    "touchy.py": "try:\n    import nsdir.inner\nexcept ImportError:\n    pass\n",
    "sneaky.py": (
        "import importlib.util, os, sys\n"
        "path = os.path.join(os.getcwd(), 'helper.py')\n"
        "spec = importlib.util.spec_from_file_location('helper', path)\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "sys.modules['helper'] = module\n"
    ),
    "gate.py": (
        "import os, time\n"
        "while not os.path.exists(os.environ['PRELOAD_GATE']):\n"
        "    time.sleep(0.01)\n"
    ),
}


def write_project(root: Path) -> Path:
    """A project directory: show.py, helper.py, pkg/, pyproject.toml, and a fake site dir."""
    project = root / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "show.py").write_text(SHOW)
    (project / "family.py").write_text(FAMILY)
    (project / "helper.py").write_text("VALUE = 1\n")
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "__main__.py").write_text(SHOW)
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    site = root / "site"
    site.mkdir()
    for name, text in SITE_MODULES.items():
        (site / name).write_text(text)
    return project


def write_django_project(root: Path) -> Path:
    """`django-admin startproject mysite`, with OBSERVE at the top of its manage.py."""
    root.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(root)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    manage = root / "manage.py"
    text = manage.read_text()
    shebang, _, rest = text.partition("\n")
    manage.write_text(f"{shebang}\n{OBSERVE}\n{rest}")
    return root


def read_observed(path: Path) -> dict[str, Any]:
    seen: dict[str, Any] = json.loads(path.read_text())
    path.unlink()
    return seen


def comparable(seen: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in seen.items() if k not in DIFFERENT}


def environment(out: Path, site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRELOAD_", "WATCHRELOAD_"))}
    env.update(PRELOAD_OUT=str(out), PYTHONPATH=str(site), **extra)
    return env
