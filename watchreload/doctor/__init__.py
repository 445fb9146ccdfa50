"""`watchreload doctor`: why watching works or does not, one line per check, each with its fix."""

from watchreload.doctor.checks import doctor_main, run_checks
from watchreload.doctor.report import (
    Check,
    Report,
    Status,
    exit_code,
    format_text,
    from_json,
    to_json,
)

__all__ = [
    "Check",
    "Report",
    "Status",
    "doctor_main",
    "exit_code",
    "format_text",
    "from_json",
    "run_checks",
    "to_json",
]
