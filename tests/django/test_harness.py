"""scripts/django-autoreload-tests' verdict: the expected-failures list must stay true."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "django-autoreload-tests"


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("django_autoreload_tests", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    expected = tmp_path / "expected.txt"
    expected.write_text("t.A.test_a  # missing public name: x\nt.A.test_b  # bug\n")
    monkeypatch.setattr(module, "EXPECTED", expected)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    return module


def results(**outcomes: str) -> dict[str, dict[str, str]]:
    return {f"t.A.{name}": {"outcome": o, "detail": ""} for name, o in outcomes.items()}


def verdict(harness: ModuleType, **outcomes: str) -> int:
    r = results(**outcomes)
    failing = {t: v for t, v in r.items() if v["outcome"] in ("fail", "error")}
    code: int = harness.compare(r, failing, False)
    return code


def test_exactly_the_listed_failures_pass_the_check(harness: ModuleType) -> None:
    assert verdict(harness, test_a="fail", test_b="error", test_c="pass") == 0


def test_a_new_failure_fails_the_check(
    harness: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verdict(harness, test_a="fail", test_b="error", test_c="fail") == 1
    assert "NEW FAILURE t.A.test_c" in capsys.readouterr().out


def test_a_listed_test_that_passes_fails_the_check(
    harness: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verdict(harness, test_a="pass", test_b="error") == 1
    assert "UNEXPECTED PASS t.A.test_a" in capsys.readouterr().out


def test_a_listed_test_that_did_not_run_is_reported_not_failed(
    harness: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verdict(harness, test_a="skip", test_b="error") == 0
    assert "NOT RUN t.A.test_a" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("detail", "cause"),
    [
        (
            "MissingName: watchreload.autoreload has no start_django",
            "missing public name: start_django",
        ),
        (
            "AttributeError: <module 'watchreload.autoreload' from '/x.py'> does not have the "
            "attribute '_exception'",
            "private name in the module: _exception",
        ),
        (
            "AttributeError: 'StatReloader' object has no attribute 'snapshot_files'",
            "missing attribute: StatReloader.snapshot_files",
        ),
    ],
)
def test_causes_name_what_is_missing(harness: ModuleType, detail: str, cause: str) -> None:
    assert harness.cause(detail) == cause
