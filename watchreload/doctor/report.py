"""What a doctor run finds: one Check per line, and how a report is shown and ended."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

logger = logging.getLogger(__name__)

Status = Literal["ok", "warn", "fail", "info"]
STATUSES: tuple[str, ...] = get_args(Status)
# A check with one of these statuses has a fix: the report as a whole needs fixing.
NEEDS_FIXING: frozenset[str] = frozenset({"warn", "fail"})


@dataclass(frozen=True)
class Check:
    """One finding. `data` holds the same facts for machines (JSON values only)."""

    name: str
    status: Status
    summary: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


Report = list[Check]


def exit_code(report: Sequence[Check]) -> int:
    """0 when nothing needs fixing (only ok and info), 1 when a check warns or fails."""
    return 1 if any(check.status in NEEDS_FIXING for check in report) else 0


def format_text(report: Sequence[Check]) -> str:
    """One line per check (`status  name: summary`), each problem followed by its fix."""
    width = max((len(check.name) for check in report), default=0)
    lines = []
    for check in report:
        lines.append(f"{check.status:<4}  {check.name:<{width}}  {check.summary}")
        if check.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    return "\n".join(lines) + "\n"


def to_json(report: Sequence[Check]) -> str:
    return json.dumps(
        {"exit_code": exit_code(report), "checks": [asdict(check) for check in report]},
        indent=2,
        sort_keys=True,
    )


def from_json(text: str) -> Report:
    """The report that to_json() wrote (for tools that read `watchreload doctor --json`)."""
    checks = []
    for item in json.loads(text)["checks"]:
        if item["status"] not in STATUSES:
            raise ValueError(f"status {item['status']!r} is unknown; expected one of {STATUSES}")
        checks.append(Check(**item))
    return checks
