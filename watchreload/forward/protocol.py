"""The forwarded stream: one JSON object per line, written by `watchreload forward`.

    {"v": 1, "type": "hello", "roots": ["/app"], "backend": "watchman"}
    {"v": 1, "type": "rescan", "root": "/app", "reason": "reconnected"}
    {"v": 1, "type": "changes", "root": "/app", "changes": [["modified", "a.py"], ["removed", "b"]]}
    {"v": 1, "type": "pause"}     {"v": 1, "type": "resume"}

`root` is the container directory a mapping names; each path is relative to it, with `/`
separators. A stream opens with a hello, and a rescan follows every hello: what changed while
no stream was up is found by the receiving side's own scan. `pause`/`resume` bracket a VCS state
(a checkout, a rebase) on the host. Decoding is pure and strict: anything else is a
MalformedMessage, which the receiving side logs and skips.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal, get_args

from watchreload.changes import Change
from watchreload.errors import MalformedMessage

PROTOCOL_VERSION = 1
# A 100,000-file checkout is about 5 MB of paths; a line past this is refused, not buffered.
MAX_LINE_BYTES = 64 * 1024 * 1024

MessageType = Literal["hello", "rescan", "changes", "pause", "resume"]
MESSAGE_TYPES: tuple[str, ...] = get_args(MessageType)

KIND_NAMES: dict[Change, str] = {
    Change.added: "added",
    Change.modified: "modified",
    Change.deleted: "removed",
}
KINDS_BY_NAME = {name: kind for kind, name in KIND_NAMES.items()}


@dataclass(frozen=True)
class Message:
    type: MessageType
    root: str = ""  # rescan ("" for every root) and changes
    roots: tuple[str, ...] = ()  # hello
    changes: tuple[tuple[Change, str], ...] = ()  # (kind, path relative to root)
    reason: str = ""  # rescan
    backend: str = ""  # hello: what watches on the host


def encode(message: Message) -> bytes:
    body: dict[str, Any] = {"v": PROTOCOL_VERSION, "type": message.type}
    if message.type == "hello":
        body.update(roots=list(message.roots), backend=message.backend)
    elif message.type == "rescan":
        body.update(root=message.root, reason=message.reason)
    elif message.type == "changes":
        body.update(
            root=message.root,
            changes=[[KIND_NAMES[kind], path] for kind, path in message.changes],
        )
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> Message:
    """The message on one line; MalformedMessage says what is wrong with it."""
    try:
        body = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage(f"not JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise MalformedMessage("not a JSON object")
    if body.get("v") != PROTOCOL_VERSION:
        raise MalformedMessage(f"protocol version {body.get('v')!r}, expected {PROTOCOL_VERSION}")
    kind = body.get("type")
    if kind not in MESSAGE_TYPES:
        raise MalformedMessage(f"unknown message type {kind!r}")
    if kind == "hello":
        roots = body.get("roots")
        if not isinstance(roots, list) or not roots:
            raise MalformedMessage("a hello without roots")
        return Message("hello", roots=tuple(map(_root, roots)), backend=str(body.get("backend")))
    if kind == "rescan":
        root = body.get("root", "")
        return Message("rescan", root=_root(root) if root else "", reason=str(body.get("reason")))
    if kind == "changes":
        return Message("changes", root=_root(body.get("root")), changes=_changes(body))
    return Message(kind)


def _root(value: object) -> str:
    """A container directory: an absolute, normalised POSIX path."""
    if not isinstance(value, str) or "\0" in value or not value.startswith("/"):
        raise MalformedMessage(f"root {value!r} is not an absolute path")
    if ".." in PurePosixPath(value).parts:
        raise MalformedMessage(f"root {value!r} has a '..' component")
    return str(PurePosixPath(value))


def _changes(body: dict[str, Any]) -> tuple[tuple[Change, str], ...]:
    entries = body.get("changes")
    if not isinstance(entries, list):
        raise MalformedMessage("changes without a list of changes")
    changes = []
    for entry in entries:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or entry[0] not in KINDS_BY_NAME
            or not isinstance(entry[1], str)
        ):
            raise MalformedMessage(f"change {entry!r} is not [kind, path]")
        changes.append((KINDS_BY_NAME[entry[0]], entry[1]))
    return tuple(changes)


def hello(roots: tuple[str, ...], backend: str) -> Message:
    return Message("hello", roots=roots, backend=backend)


def rescan(root: str, reason: str) -> Message:
    return Message("rescan", root=root, reason=reason)


def changes(root: str, items: tuple[tuple[Change, str], ...]) -> Message:
    return Message("changes", root=root, changes=items)
