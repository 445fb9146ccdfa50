"""WatchmanReloader: one subscription per watched project, filtered inside the Watchman daemon.

The reader thread blocks on the daemon's socket (and on a wake-up pipe for `stop()` and spec
changes); it never sleeps to poll. Each watch-project root gets ONE subscription whose expression
carries every include glob, extra file and ignore pattern of the WatchSpec under it, so the daemon
sends only what we would have reported ourselves.

Faults: a dead daemon is noticed at once (its socket closes); we reconnect with backoff and
resubscribe from the last clock. A daemon that lost its state answers with a fresh instance, which
gives one conservative reload. If the daemon stays unreachable for `fallback_after_s`, the reloader
polls the same WatchSpec with StatReloader's scanner until Watchman is back.

pywatchman is imported here only, and only when this backend is used.
"""

from __future__ import annotations

import errno
import functools
import importlib
import itertools
import logging
import os
import select
import shutil
import site
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from watchreload.changes import DEFAULT_DEBOUNCE_MS, Change
from watchreload.errors import WatchmanUnavailable
from watchreload.reloaders.base import BaseReloader
from watchreload.reloaders.stat import StatReloader
from watchreload.scan import Signature, Snapshot, diff_snapshots, signature_of, written_since
from watchreload.spec import GlobToken, WatchSpec, tokenize_glob
from watchreload.vcs import DEFERRED_STATES

logger = logging.getLogger(__name__)

MIN_VERSION: tuple[int, int] = (4, 9)
REQUIRED_CAPABILITIES: tuple[str, ...] = (
    "cmd-watch-project",
    "relative_root",
    "wildmatch",
    "dedup_results",
    "cmd-state-enter",
    "cmd-state-leave",
    "field-new",
    "field-exists",
)


DEFAULT_FALLBACK_AFTER_S = 10.0
DEFAULT_SPEC_CHECK_S = 1.0
# In library mode a newly imported module must be watched at once: len(sys.modules) is compared
# this often (it costs nothing); the full spec only when it changed, or every spec_check_s.
MODULES_CHECK_S = 0.05
# watch-project and clock wait for the first crawl of a tree, which takes a while on a monorepo;
# timeout_s bounds connecting, this bounds those requests.
DEFAULT_CRAWL_TIMEOUT_S = 300.0
DEFAULT_POLL_INTERVAL_S = 1.0
# Watchman's default settle period: it sends a result once the tree has been quiet this long.
WATCHMAN_SETTLE_MS = 20
RECONNECT_BACKOFF_S: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

INOTIFY_FIX = (
    "raise the limit (sudo sysctl fs.inotify.max_user_watches=524288, and persist it in "
    "/etc/sysctl.d/), then run 'watchman watch-del-all' and 'watchman shutdown-server'"
)

_FIELDS = ["name", "exists", "new", "type"]
_subscription_ids = itertools.count(1)


def import_pywatchman() -> ModuleType:
    try:
        return importlib.import_module("pywatchman")
    except ImportError as exc:
        raise WatchmanUnavailable(
            f"pywatchman cannot be imported ({exc}); install it with 'pip install pywatchman' "
            "or use --backend=stat"
        ) from exc


def describe_socket() -> str:
    sock = os.environ.get("WATCHMAN_SOCK")
    if sock:
        return f"socket {sock} (from WATCHMAN_SOCK)"
    return "the socket that 'watchman get-sockname' reports"


def parse_version(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        parts.append(int(digits or 0))
    return tuple(parts)


# -- compiling a WatchSpec into Watchman expressions ----------------------------------------------

_WILDMATCH_SPECIAL = frozenset("*?[\\")


def escape_wildmatch(text: str) -> str:
    return "".join(f"\\{c}" if c in _WILDMATCH_SPECIAL else c for c in text)


def _wildmatch_text(token: GlobToken) -> str:
    # spec.py reads a `**` that is not a whole path segment like `*`; Watchman's wildmatch would
    # then match nothing, so it is written as `*`.
    return "*" if token.kind == "star" else token.text


def to_wildmatch(pattern: str) -> str:
    """Rewrite a watchreload glob so that Watchman's wildmatch reads it the way spec.py does.

    The one difference: spec.py treats a `**` that is not a whole path segment like `*`, whereas
    Watchman's wildmatch then matches nothing. Everything else is passed through unchanged.
    """
    return "".join(map(_wildmatch_text, tokenize_glob(pattern)))


def _match(pattern: str) -> list[Any]:
    return ["match", pattern, "wholename", {"includedotfiles": True}]


def ignore_terms(
    prefix: str, name_patterns: tuple[str, ...], path_patterns: tuple[str, ...]
) -> list[Any]:
    """Terms true for a file that IgnoreMatcher.ignores_path() ignores below `prefix`.

    `prefix` is the escaped wildmatch prefix of the watched root ("" or "src/"). A name pattern
    ignores a file of that name and everything below a directory of that name; a path pattern
    ignores the path it matches and everything below it.
    """
    terms: list[Any] = []
    for pattern in name_patterns:
        wild = to_wildmatch(pattern)
        terms.append(_match(f"{prefix}**/{wild}"))
        terms.append(_match(f"{prefix}**/{wild}/**"))
    for pattern in path_patterns:
        wild = to_wildmatch(pattern)
        terms.append(_match(f"{prefix}{wild}"))
        terms.append(_match(f"{prefix}{wild}/**"))
    return terms


@dataclass
class RootTarget:
    """One WatchSpec root, as seen from its subscription's relative_root."""

    path: Path  # the root as the spec names it: reported paths are built from it
    relative: str  # its path below the subscription's relative_root, "" for the same directory
    globs: frozenset[str]


@dataclass
class SubscriptionPlan:
    """Everything one watch-project root's single subscription must carry."""

    watch_root: str
    relative_root: str = ""
    targets: list[RootTarget] = field(default_factory=list)
    extra_files: dict[str, Path] = field(default_factory=dict)  # name below relative_root -> path

    def expression(self, spec: WatchSpec) -> list[Any]:
        alternatives: list[Any] = []
        if self.extra_files:
            alternatives.append(["name", sorted(self.extra_files), "wholename"])
        names, paths = spec.ignore.name_patterns, spec.ignore.path_patterns
        for target in sorted(self.targets, key=lambda t: t.relative):
            prefix = escape_wildmatch(target.relative) + "/" if target.relative else ""
            globs = ["anyof", *(_match(prefix + to_wildmatch(g)) for g in sorted(target.globs))]
            ignored = ignore_terms(prefix, names, paths)
            if ignored:
                alternatives.append(["allof", globs, ["not", ["anyof", *ignored]]])
            else:
                alternatives.append(globs)
        return [
            "allof",
            ["anyof", ["type", "f"], ["type", "l"]],
            ["anyof", *alternatives] if alternatives else ["false"],
        ]

    def query(self, spec: WatchSpec) -> dict[str, Any]:
        query: dict[str, Any] = {
            "expression": self.expression(spec),
            "fields": _FIELDS,
            "dedup_results": True,
            "defer_vcs": True,
            "defer": list(DEFERRED_STATES),
        }
        if self.relative_root:
            query["relative_root"] = self.relative_root
        return query

    def path_for(self, name: str) -> Path:
        """The path to report for a file name in one of this subscription's results."""
        extra = self.extra_files.get(name)
        if extra is not None:
            return extra
        best: RootTarget | None = None
        for target in self.targets:
            if (not target.relative or name.startswith(target.relative + "/")) and (
                best is None or len(target.relative) > len(best.relative)
            ):
                best = target
        if best is None:
            return Path(self.watch_root, self.relative_root, name)
        return best.path / name[len(best.relative) + 1 :] if best.relative else best.path / name


@functools.lru_cache(maxsize=1)
def _library_prefixes() -> tuple[str, ...]:
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    prefixes.update(site.getsitepackages())
    prefixes.add(site.getusersitepackages())
    return tuple(sorted({os.path.realpath(p).rstrip("/") + "/" for p in prefixes if p}))


def is_library_file(path: Path) -> bool:
    """True for the standard library and installed packages (never for your project's files)."""
    real = os.path.realpath(path)
    parts = real.split("/")
    return (
        "site-packages" in parts or "dist-packages" in parts or real.startswith(_library_prefixes())
    )


def nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return candidate
    return Path(path.anchor)


def _common_dir(paths: list[str]) -> str:
    """The longest common directory of `/`-separated relative paths ("" for the watch root)."""
    if not paths:
        return ""
    split = [p.split("/") if p else [] for p in paths]
    common: list[str] = []
    for parts in zip(*split, strict=False):
        if any(part != parts[0] for part in parts):
            break
        common.append(parts[0])
    return "/".join(common)


def _below(relative: str, relative_root: str) -> str:
    if not relative_root:
        return relative
    if relative == relative_root:
        return ""
    return relative[len(relative_root) + 1 :]


# -- the reloader ----------------------------------------------------------------------------------


class _SpecPoller(StatReloader):
    """StatReloader's scanner over the owning WatchmanReloader's current spec."""

    def __init__(self, owner: WatchmanReloader, interval_s: float) -> None:
        super().__init__(interval_s=interval_s, watch_modules=False)
        self._owner = owner

    def spec(self) -> WatchSpec:
        return self._owner.spec()


class _Disconnected(Exception):
    """The daemon connection is gone (or unusable); reconnect."""


@dataclass
class Subscription:
    """Our one subscription on a watch-project root."""

    plan: SubscriptionPlan
    name: str
    query: dict[str, Any]
    clock: str | None = None  # the last clock the daemon told us: resubscribe since this
    files_clock: str | None = None  # the clock of the last result that listed files


class WatchmanReloader(BaseReloader):
    """Subscribes to the Watchman daemon and reloads on the changes it pushes."""

    name = "watchman"

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        fallback_after_s: float = DEFAULT_FALLBACK_AFTER_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        spec_check_s: float = DEFAULT_SPEC_CHECK_S,
        crawl_timeout_s: float = DEFAULT_CRAWL_TIMEOUT_S,
        debounce_ms: float = DEFAULT_DEBOUNCE_MS,
        **options: Any,
    ) -> None:
        # `debounce_ms` is the quiet period after the last write, on every backend. The daemon
        # already waits WATCHMAN_SETTLE_MS of quiet before it sends a result, so only the rest is
        # added here: the same quiet, 20 ms sooner.
        super().__init__(debounce_ms=max(0.0, debounce_ms - WATCHMAN_SETTLE_MS), **options)
        self.timeout_s = timeout_s
        self.fallback_after_s = fallback_after_s
        self.poll_interval_s = poll_interval_s
        self.spec_check_s = spec_check_s
        self.crawl_timeout_s = max(crawl_timeout_s, timeout_s)
        self.polling = False  # True while Watchman is unreachable and the stat scanner stands in
        self.connections = 0  # how many times a session was established (for tests and logs)
        self._client: Any = None
        self._pywatchman: ModuleType | None = None
        self.generation = 0  # counts completed subscription updates (spec changes, reconnects)
        self._subs: dict[str, Subscription] = {}  # by watch root
        self._subs_by_name: dict[str, Subscription] = {}
        self._watch_roots: list[str] = []  # every root a watch-project answered, longest first
        self._spec: WatchSpec | None = None
        self._spec_dirty = True
        self._held_states: set[tuple[str, str]] = set()
        self._reported: set[str] = set()
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._poller: _SpecPoller | None = None
        self._stat_files: dict[Path, Signature | None] = {}  # extra files no watch covers
        self._pending: dict[Path, Signature | None] = {}  # newly watched: compare once subscribed
        self._spec_ns = time.time_ns()  # when spec() was last read
        self._modules_seen = 0
        self._next_spec_check = 0.0
        self._next_stat_check = 0.0
        self._snapshot: Snapshot | None = None

    # -- availability ---------------------------------------------------------------------------

    @classmethod
    def check_availability(cls, timeout_s: float = 5.0) -> None:
        pywatchman = import_pywatchman()
        if not os.environ.get("WATCHMAN_SOCK") and shutil.which("watchman") is None:
            raise WatchmanUnavailable(
                "the watchman binary is not on PATH and WATCHMAN_SOCK is not set; install Watchman "
                "('apt-get install watchman', 'brew install watchman') or use --backend=stat"
            )
        started = time.monotonic()
        try:
            client = pywatchman.client(timeout=timeout_s)
            try:
                result = client.query("version", {"optional": list(REQUIRED_CAPABILITIES)})
            finally:
                client.close()
        except (pywatchman.WatchmanError, OSError) as exc:
            elapsed = time.monotonic() - started
            raise WatchmanUnavailable(
                f"the Watchman daemon at {describe_socket()} did not answer after {elapsed:.1f}s "
                f"(timeout {timeout_s:g}s): {exc}; start it with 'watchman version', fix "
                "WATCHMAN_SOCK, or use --backend=stat"
            ) from exc
        version = str(result.get("version", "0"))
        if parse_version(version)[:2] < MIN_VERSION:
            wanted = ".".join(map(str, MIN_VERSION))
            raise WatchmanUnavailable(
                f"Watchman {version} is too old; watchreload needs {wanted} or newer "
                "(upgrade it, or use --backend=stat)"
            )
        capabilities = result.get("capabilities") or {}
        missing = [name for name in REQUIRED_CAPABILITIES if not capabilities.get(name)]
        if missing:
            raise WatchmanUnavailable(
                f"Watchman {version} lacks the capabilities {', '.join(missing)}; upgrade it, "
                "or use --backend=stat"
            )

    # -- what is watched (cheap change detection for a running reader) --------------------------

    def watch_dir(self, path: str | os.PathLike[str], glob: str) -> None:
        super().watch_dir(path, glob)
        self._spec_dirty = True
        self._wake()

    def watch_file(self, path: str | os.PathLike[str]) -> None:
        super().watch_file(path)
        self._spec_dirty = True
        self._wake()

    @property
    def subscriptions(self) -> dict[str, Subscription]:
        """Watch root -> our one subscription on it (a copy, for diagnostics and tests)."""
        return dict(self._subs)

    # -- running --------------------------------------------------------------------------------

    def stop(self) -> None:
        super().stop()
        self._wake()

    def _wake(self) -> None:
        fd = self._wake_w
        if fd is None:
            return
        try:
            os.write(fd, b"x")
        except OSError as exc:  # full pipe: a wake-up is already pending; closed: we are done
            if exc.errno not in (errno.EAGAIN, errno.EBADF):
                raise

    def tick(self) -> Iterator[None]:
        self._pywatchman = import_pywatchman()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        try:
            yield from self._run()
        finally:
            self._disconnect()
            self._release_states()
            wake_r, wake_w = self._wake_r, self._wake_w
            self._wake_r = self._wake_w = None
            os.close(wake_r)
            os.close(wake_w)

    def _run(self) -> Iterator[None]:
        down_since: float | None = None
        attempt = 0
        while not self.should_stop:
            if self._client is None:
                try:
                    self._connect()
                except _Disconnected as exc:
                    now = time.monotonic()
                    if down_since is None:
                        down_since = now
                        logger.info("Watchman is unreachable (%s); reconnecting", exc)
                    if not self.polling and now - down_since >= self.fallback_after_s:
                        self._start_polling(now - down_since)
                    delay = RECONNECT_BACKOFF_S[min(attempt, len(RECONNECT_BACKOFF_S) - 1)]
                    attempt += 1
                    if self.polling:
                        delay = max(delay, self.poll_interval_s)
                    self._wait_wake(delay)
                    if self.polling and not self.should_stop:
                        self._poll_once()
                    yield
                    continue
                if down_since is not None:
                    down_for = time.monotonic() - down_since
                    logger.info("reconnected to Watchman after %.1fs", down_for)
                down_since, attempt = None, 0
                if self.polling:
                    self._stop_polling()
                yield
                continue
            try:
                self._step()
            except _Disconnected as exc:
                logger.info("lost the Watchman connection (%s); reconnecting", exc)
                self._disconnect()
                self._release_states()
                down_since = time.monotonic()
            yield

    def _step(self) -> None:
        """Block until the daemon speaks, `stop()`/`watch_dir()` wake us or spec_check_s passes."""
        client = self._client
        try:
            sock = client.tport.sock
            timeout = min(MODULES_CHECK_S, self.spec_check_s) if self.watch_modules else None
            readable, _, _ = select.select(
                [sock, self._wake_r], [], [], timeout or self.spec_check_s
            )
        except (OSError, ValueError, AttributeError) as exc:
            raise _Disconnected(str(exc)) from exc
        if self._wake_r in readable:
            self._drain_wake()
        if self.should_stop:
            return
        if sock in readable:
            pdu = self._call(client.receive)
            self._handle(pdu)
        if self._stat_files and time.monotonic() >= self._next_stat_check:
            self._next_stat_check = time.monotonic() + self.spec_check_s
            self._check_stat_files()
        now = time.monotonic()
        modules = len(sys.modules) if self.watch_modules else 0
        if self._spec_dirty or modules != self._modules_seen or now >= self._next_spec_check:
            self._modules_seen = modules
            self._next_spec_check = now + self.spec_check_s
            self._update_subscriptions(force=False)

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _wait_wake(self, timeout_s: float) -> None:
        assert self._wake_r is not None
        select.select([self._wake_r], [], [], timeout_s)
        self._drain_wake()

    # -- the session ----------------------------------------------------------------------------

    def _call(self, method: Any, *args: Any) -> Any:
        """Call the client, turning every transport failure into _Disconnected."""
        pw = self._pywatchman
        assert pw is not None
        client = self._client
        buffered: list[Any] = []
        try:
            result = method(*args)
        except pw.CommandError as exc:
            self._report_error(str(exc))
            raise _Disconnected(f"Watchman refused {args[:1] or 'a read'}: {exc}") from exc
        except (pw.WatchmanError, OSError) as exc:
            raise _Disconnected(str(exc) or type(exc).__name__) from exc
        finally:
            if client is not None:
                # pywatchman buffers unilateral PDUs in class-level dicts; keep ours per client.
                buffered = [pdu for pdus in client.subs.values() for pdu in pdus]
                client.subs.clear()
                client.sub_by_root.clear()
                client.logs.clear()
        if method is not client.receive:
            for pdu in buffered:
                self._handle(pdu)
        return result

    def _query(self, *args: Any) -> Any:
        result = self._call(self._client.query, *args)
        if isinstance(result, dict) and "warning" in result:
            self._report_warning(str(result["warning"]))
        return result

    def _connect(self) -> None:
        pw = self._pywatchman
        assert pw is not None
        try:
            client = pw.client(timeout=self.timeout_s)
            client.subs, client.sub_by_root, client.logs = {}, {}, []
            client.query("version")
            client.setTimeout(self.crawl_timeout_s)
        except (pw.WatchmanError, OSError) as exc:
            raise _Disconnected(f"{describe_socket()}: {exc}") from exc
        self._client = client
        self.connections += 1
        try:
            self._update_subscriptions(force=True)
        except _Disconnected:
            self._disconnect()
            raise

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        self._subs_by_name.clear()
        self._watch_roots.clear()
        if client is not None:
            try:
                client.close()
            except OSError as exc:
                logger.debug("closing the Watchman connection failed: %s", exc)

    def _release_states(self) -> None:
        for _ in self._held_states:
            self.batcher.resume()
        self._held_states.clear()

    def _update_subscriptions(self, *, force: bool) -> None:
        """(Re)subscribe where the spec changed; on a new session resubscribe every root."""
        dirty, self._spec_dirty = self._spec_dirty, False  # before spec(): a later watch_dir counts
        spec_ns = time.time_ns()
        spec = self.spec()
        if not force and not dirty and spec == self._spec:
            self._spec_ns = spec_ns
            return
        self._spec = spec
        plans = self._plan(spec)
        for root in list(self._subs):
            if root not in plans:
                sub = self._subs.pop(root)
                if not force:
                    self._query("unsubscribe", root, sub.name)
        for root, plan in plans.items():
            old = self._subs.get(root)
            query = plan.query(spec)
            if old is not None and not force and old.query == query:
                old.plan = plan
                continue
            since = old.clock if old is not None else None
            if since is None:
                since = self._query("clock", root)["clock"]
            query_with_since = dict(query, since=since)
            if old is not None:
                name = old.name
            else:
                name = f"watchreload-{os.getpid()}-{next(_subscription_ids)}"
            if old is not None and not force:
                # Watchman 4.9 keeps both when a name is subscribed twice; since= covers the gap.
                self._query("unsubscribe", root, name)
            sub = Subscription(plan=plan, name=name, query=query, clock=since)
            self._subs[root] = sub
            self._subs_by_name[name] = sub
            self._query("subscribe", root, name, query_with_since)
            logger.debug("subscribed %s to %s since %s: %s", name, root, since, query_with_since)
        # Files that joined a new watch: an edit between noticing them and subscribing counts.
        # A file that was not watched until now (a module imported since the last look) counts as
        # changed if it was written since that look.
        pending, self._pending = self._pending, {}
        changed = [
            (p, Change.modified)
            for p, sig in pending.items()
            if signature_of(p) != sig or written_since(sig, self._spec_ns)
        ]
        self._spec_ns = spec_ns
        if changed:
            self.notify_files_changed(changed)
        self.generation += 1
        self.ready.set()

    def _resolve(self, directory: Path, *, create: bool = True) -> tuple[str, str] | None:
        """(watch root, relative path) for an existing directory, reusing watches we know.

        With `create=False` only an existing watch is used (None when there is none).
        """
        real = os.path.realpath(directory)
        for root in self._watch_roots:
            if real == root or real.startswith(root.rstrip("/") + "/"):
                relative = os.path.relpath(real, root).replace(os.sep, "/")
                return root, "" if relative == "." else relative
        if not create:
            return None
        result = self._query("watch-project", real)
        root = str(result["watch"])
        self._watch_roots.append(root)
        self._watch_roots.sort(key=len, reverse=True)
        relative = str(result.get("relative_path") or "")
        return root, relative

    def _plan(self, spec: WatchSpec) -> dict[str, SubscriptionPlan]:
        """Group the spec by watch-project root: one SubscriptionPlan per root."""
        anchors: list[tuple[Path, Path, str | None]] = []  # (anchor dir, spec path, extra name)
        for root in sorted(spec.roots, key=lambda r: len(r.parts)):  # parents first
            anchors.append((nearest_existing(root), root, None))
        # Extra files (in library mode, every imported module) join a watch that exists already,
        # ours or another client's. Your own modules start one (watch-project: your project).
        # Installed libraries and the standard library never do: watch-project there would crawl
        # whatever project holds them (a pyenv checkout, a dotfiles repository in $HOME); they are
        # stat-checked every spec_check_s instead.
        self._watch_roots[:] = sorted(
            set(self._watch_roots) | {str(r) for r in self._query("watch-list")["roots"]},
            key=len,
            reverse=True,
        )
        stat_files: dict[Path, Signature | None] = {}
        for extra in sorted(spec.extra_files, key=is_library_file):  # your own files first
            anchors.append((nearest_existing(extra.parent), extra, extra.name))
        placed: list[tuple[str, str, str, Path, str | None]] = []
        for anchor, path, extra_name in anchors:
            resolved = self._resolve(anchor, create=False)
            if resolved is None and extra_name is not None and is_library_file(path):
                if path in self._stat_files:
                    stat_files[path] = self._stat_files[path]
                else:
                    signature = signature_of(path)
                    # Written since the last look: record it as unseen, so that the next stat
                    # check reports it.
                    written = written_since(signature, self._spec_ns)
                    stat_files[path] = None if written else signature
                continue
            if resolved is None:
                if extra_name is not None:
                    self._pending[path] = signature_of(path)
                resolved = self._resolve(anchor)
            assert resolved is not None
            watch_root, anchor_relative = resolved
            wanted = path.parent if extra_name is not None else path
            tail = wanted.relative_to(anchor).as_posix() if wanted != anchor else ""
            relative = "/".join(p for p in (anchor_relative, tail) if p and p != ".")
            placed.append((watch_root, anchor_relative, relative, path, extra_name))
        plans: dict[str, SubscriptionPlan] = {}
        anchor_dirs: dict[str, list[str]] = {}
        for watch_root, anchor_relative, _, _, _ in placed:
            plans.setdefault(watch_root, SubscriptionPlan(watch_root))
            anchor_dirs.setdefault(watch_root, []).append(anchor_relative)
        for watch_root, plan in plans.items():
            plan.relative_root = _common_dir(anchor_dirs[watch_root])
        for watch_root, _, relative, path, extra_name in placed:
            plan = plans[watch_root]
            below = _below(relative, plan.relative_root)
            if extra_name is not None:
                plan.extra_files["/".join(p for p in (below, extra_name) if p)] = path
            else:
                plan.targets.append(RootTarget(path, below, spec.roots[path]))
        self._stat_files = stat_files
        return plans

    # -- what the daemon says -------------------------------------------------------------------

    def _handle(self, pdu: Any) -> None:
        if not isinstance(pdu, dict):
            return
        if "warning" in pdu:
            self._report_warning(str(pdu["warning"]))
        name = pdu.get("subscription")
        if name is None:
            return
        sub = self._subs_by_name.get(str(name))
        if sub is None or self._subs.get(sub.plan.watch_root) is not sub:
            return  # a PDU for a subscription we have since replaced
        root = sub.plan.watch_root
        if pdu.get("canceled"):
            # The watched directory itself went away (deleted, or `watchman watch-del`): its files
            # are gone too, which a reload should see. Resubscribing watches it through a parent.
            self.batcher.add_reason(f"Watchman stopped watching {root} (was it deleted?)")
            raise _Disconnected(f"Watchman cancelled the subscription on {root}")
        if "state-enter" in pdu:
            self._state_entered(root, str(pdu["state-enter"]))
        if "state-leave" in pdu:
            self._state_left(root, str(pdu["state-leave"]), bool(pdu.get("abandoned")))
        clock = pdu.get("clock")
        files = pdu.get("files")
        if isinstance(clock, str):
            if files and clock == sub.files_clock and not pdu.get("is_fresh_instance"):
                # Watchman 4.9 sends a deferred (defer_vcs) result twice, with the same clock:
                # nothing can have changed between a clock and itself.
                return
            sub.clock = clock
            if files:
                sub.files_clock = clock
        if files is None:
            return
        if pdu.get("is_fresh_instance"):
            logger.warning(
                "Watchman lost track of %s (it restarted, or recrawled); reloading once to be safe",
                root,
            )
            self.batcher.add_reason(
                f"Watchman restarted; changes under {root} may have been missed"
            )
            return
        changes: list[tuple[Path, Change]] = []
        for entry in files:
            if isinstance(entry, str):
                entry = {"name": entry, "exists": True, "new": False}
            exists, new = bool(entry.get("exists", True)), bool(entry.get("new", False))
            if not exists and new:
                continue  # created and removed again between two notifications
            change = Change.deleted if not exists else Change.added if new else Change.modified
            changes.append((sub.plan.path_for(str(entry["name"])), change))
        self.notify_files_changed(changes)

    def _check_stat_files(self) -> None:
        changes: list[tuple[Path, Change]] = []
        for path, old in self._stat_files.items():
            new = signature_of(path)
            if new != old:
                self._stat_files[path] = new
                kind = Change.deleted if new is None else Change.added if old is None else None
                changes.append((path, kind or Change.modified))
        if changes:
            self.notify_files_changed(changes)

    def _state_entered(self, root: str, state: str) -> None:
        if state in DEFERRED_STATES and (root, state) not in self._held_states:
            logger.info(
                "Watchman state %s entered on %s; holding reloads until it ends", state, root
            )
            self._held_states.add((root, state))
            self.batcher.pause()

    def _state_left(self, root: str, state: str, abandoned: bool) -> None:
        if (root, state) in self._held_states:
            self._held_states.discard((root, state))
            logger.info(
                "Watchman state %s %s on %s", state, "abandoned" if abandoned else "left", root
            )
            self.batcher.resume()

    def _report_warning(self, warning: str) -> None:
        warning = " ".join(warning.split())
        lowered = warning.lower()
        if "recrawl" in lowered:
            self._report_once(
                "recrawl",
                "Watchman had to recrawl (%s); if this repeats the inotify watch limit is probably "
                "too low: " + INOTIFY_FIX,
                warning.strip(),
            )
        else:
            self._report_once(warning, "Watchman warns: %s", warning.strip())

    def _report_error(self, error: str) -> None:
        error = " ".join(error.split())
        lowered = error.lower()
        if any(s in lowered for s in ("poison", "non-recoverable", "max_user_watches", "inotify")):
            self._report_once(
                "poisoned",
                "Watchman is out of inotify watches and stopped watching (%s): " + INOTIFY_FIX,
                error.strip(),
            )

    def _report_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._reported:
            self._reported.add(key)
            logger.warning(message, *args)

    # -- standing in with the stat scanner ------------------------------------------------------

    def _start_polling(self, down_for_s: float) -> None:
        logger.warning(
            "Watchman unreachable for %.0fs at %s; polling the same files every %gs until it "
            "returns",
            down_for_s,
            describe_socket(),
            self.poll_interval_s,
        )
        self.polling = True
        self._poller = _SpecPoller(self, self.poll_interval_s)
        self._snapshot = self._poller.snapshot()
        self.ready.set()  # the scanner's baseline is taken: nothing is missed from here on
        for sub in self._subs.values():
            sub.clock = None  # the scanner covers the gap; a new daemon starts from a fresh clock
        # Whatever changed between the daemon's death and this first scan is unknown.
        self.batcher.add_reason(
            "Watchman went away; changes while it was down may have been missed"
        )

    def _poll_once(self) -> None:
        if self._poller is None or self._snapshot is None:
            return
        current = self._poller.snapshot()
        for path, change in diff_snapshots(self._snapshot, current):
            self.notify_file_changed(path, change)
        self._snapshot = current

    def _stop_polling(self) -> None:
        # Subscribed (clock taken) before this last scan, so no edit falls between the two.
        self._poll_once()
        self.polling = False
        self._poller = None
        self._snapshot = None
        logger.warning("Watchman is back; stopped polling")
