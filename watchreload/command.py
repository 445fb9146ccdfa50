"""The command that command mode runs: checked before the first start, told what changed at each
restart.

The restarted child finds the changed paths in `WATCHRELOAD_CHANGES`, a JSON list of absolute
paths (`[]` after SIGHUP; unset for the first start). The list is bounded to
CHANGES_ENV_LIMIT_BYTES so that a branch switch touching thousands of files cannot make exec fail:
past the limit the variable holds only the first paths that fit, and `WATCHRELOAD_CHANGES_FILE`
names a JSON file with the full list (it is deleted at the next restart and when watchreload
exits). `WATCHRELOAD_CHANGES_FILE` is set only when the inline list was truncated.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from watchreload.changes import ChangeSet
from watchreload.errors import CommandError, CommandNotExecutable, CommandNotFound

logger = logging.getLogger(__name__)

CHANGES_ENV = "WATCHRELOAD_CHANGES"
CHANGES_FILE_ENV = "WATCHRELOAD_CHANGES_FILE"
# One environment string may not exceed 128 KiB on Linux (MAX_ARG_STRLEN), and the whole
# environment shares the argument space with argv; 64 KiB leaves room for both.
CHANGES_ENV_LIMIT_BYTES = 64 * 1024


def check_command(command: Sequence[str], shell: bool = False) -> None:
    """Raise CommandNotFound / CommandNotExecutable before anything else starts."""
    if not command:
        raise CommandError(
            "no command given; pass the command to run, such as ['python', 'app.py']"
        )
    if shell:
        if shutil.which("sh") is None:
            raise CommandNotFound(
                "the shell setting needs /bin/sh, which was not found; turn the shell setting off"
            )
        return
    program = command[0]
    if os.sep in program:
        if not os.path.exists(program):
            raise CommandNotFound(f"command {program!r} does not exist; check the path")
        if os.path.isdir(program) or not os.access(program, os.X_OK):
            raise CommandNotExecutable(
                f"command {program!r} is not executable; chmod +x it or run it through its "
                "interpreter"
            )
    elif shutil.which(program) is None:
        raise CommandNotFound(
            f"command {program!r} not found on PATH; check the spelling or pass its full path"
        )


def changes_environment(
    changes: ChangeSet | None, limit_bytes: int = CHANGES_ENV_LIMIT_BYTES
) -> tuple[dict[str, str], Path | None]:
    """The variables that tell a restarted child what changed, and the overflow file if any."""
    if changes is None:
        return {}, None
    paths = [os.fspath(p) for p in changes.paths]
    inline = json.dumps(paths)
    if len(inline.encode()) <= limit_bytes:
        return {CHANGES_ENV: inline}, None
    fd, name = tempfile.mkstemp(prefix="watchreload-changes-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(paths, f)
    # Keep the longest prefix of paths that fits: bisect on the encoded size.
    low, high = 0, len(paths)
    while low < high:
        mid = (low + high + 1) // 2
        if len(json.dumps(paths[:mid]).encode()) <= limit_bytes:
            low = mid
        else:
            high = mid - 1
    logger.debug(
        "%d changed paths do not fit in %s; passing %d inline and all in %s",
        len(paths),
        CHANGES_ENV,
        low,
        name,
    )
    return {CHANGES_ENV: json.dumps(paths[:low]), CHANGES_FILE_ENV: name}, Path(name)


def without_changes(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without a stale list from an outer watchreload, which means nothing here."""
    return {k: v for k, v in env.items() if k not in (CHANGES_ENV, CHANGES_FILE_ENV)}


class ChangesHandoff:
    """The changes variables for each start, and the one overflow file they may name.

    The file lives until the next start or `close()`: the child it was written for may read it
    at any time while it runs.
    """

    def __init__(self, limit_bytes: int = CHANGES_ENV_LIMIT_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self._file: Path | None = None

    def environment(self, changes: ChangeSet | None) -> dict[str, str]:
        """The variables for the next start (deleting the previous overflow file)."""
        self.close()
        extra, self._file = changes_environment(changes, self.limit_bytes)
        return extra

    def close(self) -> None:
        if self._file is not None:
            self._file.unlink(missing_ok=True)
            self._file = None
