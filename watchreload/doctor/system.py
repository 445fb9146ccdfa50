"""The machine's side: inotify limits and usage, and the file systems the roots live on."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from watchreload import mounts
from watchreload.doctor.report import Check

logger = logging.getLogger(__name__)

PROC = Path("/proc")
WARN_SHARE = 0.9  # warn when the directories to watch take more than this share of what is left
MIN_SUGGESTED_WATCHES = 524288
SYSCTL_FILE = "/etc/sysctl.d/60-watchman.conf"


@dataclass
class Inotify:
    max_user_watches: int | None = None
    max_user_instances: int | None = None
    watches_in_use: int = 0
    instances_in_use: int = 0
    unreadable_processes: int = 0  # our processes whose fds we could not read


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _count_process(process: Path, usage: Inotify) -> None:
    try:
        fds = os.listdir(process / "fd")
    except OSError:
        usage.unreadable_processes += 1
        return
    for fd in fds:
        try:
            if os.readlink(process / "fd" / fd) != "anon_inode:inotify":
                continue
            text = (process / "fdinfo" / fd).read_text()
        except OSError:
            continue  # closed meanwhile
        usage.instances_in_use += 1
        usage.watches_in_use += sum(line.startswith("inotify wd:") for line in text.splitlines())


def read_inotify(proc_root: Path = PROC, uid: int | None = None) -> Inotify:
    """The limits in proc_root/sys/fs/inotify and what `uid`'s processes hold (the limits are
    per user): watches are the `inotify wd:` lines of their /proc/<pid>/fdinfo files."""
    uid = os.getuid() if uid is None else uid
    limits = proc_root / "sys" / "fs" / "inotify"
    usage = Inotify(
        _read_int(limits / "max_user_watches"), _read_int(limits / "max_user_instances")
    )
    try:
        entries = os.listdir(proc_root)
    except OSError:
        return usage
    for entry in entries:
        process = proc_root / entry
        try:
            if not entry.isdigit() or process.stat().st_uid != uid:
                continue
        except OSError:
            continue
        _count_process(process, usage)
    return usage


def suggested_watches(needed: int) -> int:
    value = MIN_SUGGESTED_WATCHES
    while value < 2 * needed:
        value *= 2
    return value


def check_inotify(usage: Inotify, to_add: int, already_watched: int) -> Check:
    """`to_add`: directories a new Watchman watch would take; `already_watched`: directories of
    our roots the daemon already holds (their watches are part of the usage)."""
    data = {
        "max_user_watches": usage.max_user_watches,
        "max_user_instances": usage.max_user_instances,
        "watches_in_use": usage.watches_in_use,
        "instances_in_use": usage.instances_in_use,
        "directories_to_add": to_add,
        "directories_already_watched": already_watched,
    }
    limit = usage.max_user_watches
    if limit is None:
        return Check("inotify", "info", "no inotify limits here (not Linux)", None, data)
    remaining = limit - usage.watches_in_use
    summary = (
        f"max_user_watches {limit:,}, {usage.watches_in_use:,} in use, {remaining:,} left; "
        f"{to_add:,} directories to watch"
        + (f" ({already_watched:,} more already watched)" if already_watched else "")
        + f"; max_user_instances {usage.max_user_instances}, {usage.instances_in_use} in use"
    )
    if to_add > WARN_SHARE * remaining:
        n = suggested_watches(usage.watches_in_use + to_add)
        fix = (
            f"sudo sysctl fs.inotify.max_user_watches={n}; to keep it after a reboot: echo "
            f"fs.inotify.max_user_watches={n} | sudo tee {SYSCTL_FILE} (in a container, on the "
            "host); or ignore big directories in .watchmanconfig ignore_dirs"
        )
        return Check("inotify", "warn", summary + "; too few watches left", fix, data)
    instances = usage.max_user_instances
    if instances is not None and to_add and usage.instances_in_use >= instances:
        fix = f"sudo sysctl fs.inotify.max_user_instances={max(1024, 2 * instances)}"
        return Check("inotify", "warn", summary + "; no inotify instance left", fix, data)
    return Check("inotify", "ok", summary, None, data)


def _read_mountinfo() -> str | None:
    try:
        return os.fsdecode(mounts.MOUNTINFO.read_bytes())
    except OSError:
        return None


def check_mounts(root: Path) -> Check:
    """The file system of `root` and of mounts below it; whether their events can be trusted."""
    mountinfo = _read_mountinfo()
    if mountinfo is None:
        summary = f"{root}: file system unknown (no {mounts.MOUNTINFO})"
        return Check("file system", "info", summary, None, {"root": str(root), "mounts": []})
    found = mounts.mounts_in(str(root.resolve()), mountinfo)
    listed = [
        {"mount_point": m.mount_point, "fs_type": m.fs_type, "unreliable": bool(origin)}
        for m in found
        for origin in [mounts.unreliable_origin(m.fs_type)]
    ]
    shown = "; ".join(f"{m['mount_point']} {m['fs_type']}" for m in listed)
    data = {"root": str(root), "mounts": listed}
    unreliable = mounts.events_unreliable(root)
    if unreliable is not None:
        summary = f"{root}: {unreliable}; auto polls there ({shown})"
        fix = (
            "none needed with --backend=auto (polling sees edits made behind the mount); "
            "do not force --backend=watchman here"
        )
        return Check("file system", "info", summary, fix, data)
    return Check("file system", "ok", f"{root}: {shown}", None, data)
