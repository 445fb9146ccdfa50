"""watchreload.mounts: the file system of a path, and auto's fallback to polling where file
events may not arrive, checked on this machine's real mounts and on a real FUSE (bindfs) mount."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.programs.harness import clean_environ, interrupt_at_teardown
from tests.support import PYTHON, Spawned, WatchmanDaemon, wait_for
from watchreload.mounts import (
    MOUNTINFO,
    Mount,
    events_unreliable,
    file_system_of,
    mount_of,
    mounts_in,
    parse_mountinfo,
    unreliable_origin,
)
from watchreload.reloaders import BaseReloader, get_reloader
from watchreload.reloaders.watchman import WatchmanReloader

Spawn = Callable[..., Spawned]

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="/proc/self/mountinfo is Linux's"
)

# Shaped like a Docker Desktop container's mountinfo: an overlay root, a project bind-mounted
# through gRPC FUSE with a space in its name (the kernel writes it as \040), a named volume for
# node_modules inside it, a tmpfs stacked twice on /run, and a neighbour whose name starts alike.
SAMPLE = r"""
1062 898 0:94 / / rw,relatime master:456 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
1063 1062 0:97 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1070 1062 0:104 /Users/me/my\040app /app rw,nosuid,relatime - fuse.grpcfuse grpcfuse rw,user_id=0
1071 1070 254:1 /docker/volumes/nm/_data /app/node_modules rw,relatime - ext4 /dev/vda1 rw
1072 1062 0:105 / /my\040src rw,relatime shared:7 master:2 - fakeowner /run/host_mark/Users rw
1073 1062 0:106 / /run rw,nosuid - tmpfs tmpfs rw
1074 1073 0:107 / /run rw,nosuid - tmpfs second rw
1075 1062 0:108 / /app2 rw - ext4 /dev/vda2 rw
1076 1062 0:109 / /back\134slash rw - nfs4 server:/export rw
not a mountinfo line
"""


def findmnt_fs_type(path: Path) -> str:
    findmnt = shutil.which("findmnt")
    if findmnt is None:
        raise RuntimeError("findmnt (util-linux) is not on PATH")
    result = subprocess.run(
        [findmnt, "-n", "-o", "FSTYPE", "--target", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()[-1]  # findmnt lists each of stacked mounts; the last is on top


def test_parse_mountinfo_unescapes_and_skips_what_it_cannot_read() -> None:
    mounts = parse_mountinfo(SAMPLE)
    assert len(mounts) == 9
    assert mounts[2] == Mount("/app", "fuse.grpcfuse", "grpcfuse")
    assert mounts[4] == Mount("/my src", "fakeowner", "/run/host_mark/Users")  # optional fields
    assert mounts[8] == Mount("/back\\slash", "nfs4", "server:/export")


@pytest.mark.parametrize(
    ("path", "fs_type"),
    [
        ("/", "overlay"),
        ("/etc/hosts", "overlay"),
        ("/app", "fuse.grpcfuse"),
        ("/app/src/main.py", "fuse.grpcfuse"),
        ("/app/node_modules/x/index.js", "ext4"),  # a mount inside the bind mount wins
        ("/app2/main.py", "ext4"),  # not below /app though its name starts alike
        ("/my src/main.py", "fakeowner"),
        ("/run/lock", "tmpfs"),
        ("/back\\slash/x", "nfs4"),
    ],
)
def test_mount_of_picks_the_longest_mount_point(path: str, fs_type: str) -> None:
    mount = mount_of(path, SAMPLE)
    assert mount is not None
    assert mount.fs_type == fs_type


def test_mount_of_picks_the_last_of_stacked_mounts() -> None:
    assert mount_of("/run/lock", SAMPLE) == Mount("/run", "tmpfs", "second")


@pytest.mark.parametrize(
    ("path", "mount_points"),
    [
        ("/app", ["/app", "/app/node_modules"]),
        ("/app/src", ["/app"]),
        (
            "/",
            ["/", "/proc", "/app", "/app/node_modules", "/my src", "/run", "/app2", "/back\\slash"],
        ),
        ("/run", ["/run"]),  # the top of two stacked mounts, once
    ],
)
def test_mounts_in_lists_the_holder_then_the_mounts_below(
    path: str, mount_points: list[str]
) -> None:
    mounts = mounts_in(path, SAMPLE)
    assert [mount.mount_point for mount in mounts] == mount_points
    assert mounts[0] == mount_of(path, SAMPLE)
    assert Mount("/run", "tmpfs", "tmpfs") not in mounts  # hidden under the second one


def test_mount_of_without_mounts() -> None:
    assert mount_of("/app", "") is None


@pytest.mark.parametrize(
    ("fs_type", "origin"),
    [
        ("fuse.grpcfuse", "Docker Desktop"),
        ("fakeowner", "Docker Desktop"),
        ("9p", "a WSL 2 Windows drive or a virtual machine's shared folder"),
        ("vboxsf", "a VirtualBox shared folder"),
        ("nfs4", "a network file system"),
        ("smb3", "an SMB share"),
        ("fuse", "a FUSE file system"),
        ("fuse.sshfs", "a FUSE file system"),
        ("fuseblk", None),  # ntfs-3g on a local disk: every change goes through the mount
        ("ext4", None),
        ("overlay", None),  # a container's own root file system
        ("tmpfs", None),
        ("", None),  # unknown (macOS)
    ],
)
def test_unreliable_origin(fs_type: str, origin: str | None) -> None:
    assert unreliable_origin(fs_type) == origin


@linux_only
@pytest.mark.parametrize("where", ["root", "tmp_path", "/dev/shm"])
def test_file_system_of_real_paths_agrees_with_findmnt(tmp_path: Path, where: str) -> None:
    path = {"root": Path("/"), "tmp_path": tmp_path, "/dev/shm": Path("/dev/shm")}[where]
    if not path.is_dir():
        pytest.skip(f"{path} does not exist here")
    fs_type = file_system_of(path)
    assert fs_type
    assert fs_type == findmnt_fs_type(path)


@linux_only
def test_file_system_of_a_path_that_does_not_exist_yet(tmp_path: Path) -> None:
    assert file_system_of(tmp_path / "later" / "app.py") == findmnt_fs_type(tmp_path)


@linux_only
def test_file_system_of_follows_symlinks(tmp_path: Path) -> None:
    if not Path("/dev/shm").is_dir() or findmnt_fs_type(Path("/dev/shm")) == findmnt_fs_type(
        tmp_path
    ):
        pytest.skip("needs /dev/shm on a file system other than the temporary directory's")
    link = tmp_path / "shm"
    link.symlink_to("/dev/shm")
    assert file_system_of(link) == findmnt_fs_type(Path("/dev/shm"))


@pytest.mark.skipif(MOUNTINFO.exists(), reason="for systems without /proc/self/mountinfo")
def test_without_mountinfo_nothing_is_known(tmp_path: Path) -> None:
    assert file_system_of(tmp_path) == ""
    assert events_unreliable(tmp_path) is None


@linux_only
def test_a_local_directory_is_reliable(tmp_path: Path) -> None:
    assert events_unreliable(tmp_path) is None


# A real FUSE mount: bindfs mirrors a directory as Docker Desktop's file sharing mirrors the host's.
# An edit made in the source directory (the "host") reaches no inotify watch on the mount point.


@pytest.fixture
def fuse_mount(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(source, mount point): `source` mounted with bindfs at a mount point whose name has a space.

    bindfs runs in the foreground as our child; the mount is always unmounted and bindfs ended.
    """
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        # Not something scripts/test can install: the kernel, the container or the permissions.
        pytest.skip("/dev/fuse is missing or not ours to open: no FUSE mounts here")
    bindfs = shutil.which("bindfs")
    if bindfs is None:
        raise RuntimeError("bindfs is not on PATH; scripts/test installs it")
    source = tmp_path / "host"
    mount_point = tmp_path / "in container"
    source.mkdir()
    mount_point.mkdir()
    (source / "app.py").write_text("print('v1')\n")
    process = subprocess.Popen(
        [bindfs, "-f", str(source), str(mount_point)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: os.path.ismount(mount_point) or process.poll() is not None,
            message="bindfs to mount",
        )
        if not os.path.ismount(mount_point):
            output = process.communicate()[0].decode(errors="replace")
            pytest.fail(f"bindfs could not mount (status {process.returncode}): {output}")
        yield source, mount_point
    finally:
        if os.path.ismount(mount_point):
            fusermount = shutil.which("fusermount3") or shutil.which("fusermount")
            unmount, detach = (
                ([fusermount, "-u"], [fusermount, "-u", "-z"])
                if fusermount
                else (["umount"], ["umount", "-l"])
            )
            unmounted = subprocess.run([*unmount, str(mount_point)], check=False)
            if unmounted.returncode != 0:  # busy: detach it now, it goes when the last user does
                subprocess.run([*detach, str(mount_point)], check=True)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)
        finally:
            if process.stdout is not None:
                process.stdout.close()
        assert not os.path.ismount(mount_point)


def auto_reloader_without_daemon(roots: list[Path], tmp_path: Path) -> BaseReloader:
    """get_reloader("auto") with no Watchman answering: a mount-based choice needs no daemon."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("WATCHMAN_SOCK", str(tmp_path / "no-daemon.sock"))
        return get_reloader("auto", roots=roots, watch_modules=False)


@linux_only
def test_a_fuse_mount_is_named(fuse_mount: tuple[Path, Path]) -> None:
    _, mount_point = fuse_mount
    assert file_system_of(mount_point) == findmnt_fs_type(mount_point)
    assert file_system_of(mount_point / "app.py") == "fuse"
    assert events_unreliable(mount_point) == (
        f"{mount_point} is on a fuse mount (a FUSE file system), where file events may not arrive"
    )


@linux_only
def test_auto_polls_when_a_root_is_on_a_fuse_mount(
    fuse_mount: tuple[Path, Path], tmp_path: Path
) -> None:
    _, mount_point = fuse_mount
    local = tmp_path / "local"
    local.mkdir()
    reloader = auto_reloader_without_daemon([local, mount_point], tmp_path)
    assert reloader.name == "stat"
    assert reloader.reason == events_unreliable(mount_point)


@linux_only
def test_auto_polls_when_a_mount_below_a_root_is_unreliable(
    fuse_mount: tuple[Path, Path], tmp_path: Path
) -> None:
    # As with a Docker Desktop bind mount of ./src into a working directory of the image.
    _, mount_point = fuse_mount
    assert file_system_of(tmp_path) != "fuse"
    reloader = auto_reloader_without_daemon([tmp_path], tmp_path)
    assert reloader.name == "stat"
    assert reloader.reason == (
        f"{mount_point} is on a fuse mount (a FUSE file system), where file events may not arrive"
    )


@linux_only
def test_requested_watchman_is_not_second_guessed(
    fuse_mount: tuple[Path, Path], tmp_path: Path
) -> None:
    from watchreload.errors import WatchmanUnavailable

    _, mount_point = fuse_mount
    # The mount is not looked at: Watchman is asked, and here no daemon answers.
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("WATCHMAN_SOCK", str(tmp_path / "no-daemon.sock"))
        with pytest.raises(WatchmanUnavailable):
            get_reloader("watchman", watchman_timeout_s=0.5, roots=[mount_point])
        reloader = get_reloader("stat", roots=[mount_point], watch_modules=False)
    assert reloader.reason == "requested"


@linux_only
@pytest.mark.watchman
def test_why_watchman_misses_edits_made_behind_a_fuse_mount_and_polling_does_not(
    fuse_mount: tuple[Path, Path], watchman_daemon: WatchmanDaemon
) -> None:
    """The premise, on a real mount: inotify only hears about changes made through the mount."""
    source, mount_point = fuse_mount
    watchman = WatchmanReloader(watch_modules=False)
    polling = get_reloader("auto", poll_interval_s=0.1, roots=[mount_point], watch_modules=False)
    reloaders = [watchman, polling]
    try:
        for reloader in reloaders:
            reloader.watch_dir(mount_point, "**/*.py")
            reloader.start()
        for reloader in reloaders:
            assert reloader.wait_until_ready(30), reloader.error
        (source / "app.py").write_text("print('edited on the host')\n")
        seen = polling.wait_for_changes(15)
        assert seen is not None
        assert [path.name for path in seen.paths] == ["app.py"]
        assert watchman.wait_for_changes(1.0) is None  # polling has seen it; Watchman never will
        (mount_point / "app.py").write_text("print('edited in the container')\n")
        assert watchman.wait_for_changes(15) is not None  # it was watching all along
    finally:
        for reloader in reloaders:
            reloader.stop()
        for reloader in reloaders:
            reloader.join(10)
        # Let go of the mount so that it can be unmounted.
        subprocess.run(
            ["watchman", f"--sockname={watchman_daemon.sockname}", "watch-del", str(mount_point)],
            capture_output=True,
            check=False,
        )


@pytest.fixture
def spawn(spawn: Spawn) -> Iterator[Spawn]:
    yield from interrupt_at_teardown(spawn)


@linux_only
def test_cli_on_a_fuse_mount_says_why_it_polls_and_sees_edits_made_behind_it(
    fuse_mount: tuple[Path, Path], spawn: Spawn, tmp_path: Path
) -> None:
    source, mount_point = fuse_mount
    # --scope tree: `python -c` imports nothing of the tree, so with imports no edit would count.
    args = [PYTHON, "-m", "watchreload", "-w", str(mount_point), "--poll-interval=0.1"]
    args.append("--scope=tree")
    child = [PYTHON, "-c", "import time; print('child started', flush=True); time.sleep(60)"]
    process = spawn([*args, "--", *child], cwd=tmp_path, env=clean_environ())
    try:
        wait_for(lambda: "child started" in process.output, message="the child to start")
        first = process.output.splitlines()[0]
        assert first == (
            f"watchreload: using stat backend ({mount_point} is on a fuse mount (a FUSE file "
            f"system), where file events may not arrive); watching in container for **/*.py; "
            "scope tree (agent on)"
        )
        # The "host" edits the file behind the mount; polling through the mount sees it.
        (source / "app.py").write_text("print('v2, longer')\n")
        wait_for(
            lambda: process.output.count("child started") == 2, message="a restart for the edit"
        )
        assert "restarting: " in process.output
    finally:
        # Stop watchreload (it polls the mount) before the fixture unmounts it.
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        process.wait()
