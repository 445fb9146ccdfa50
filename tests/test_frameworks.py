"""frameworks.py: which commands have a reloader of their own, and how it is turned off."""

from __future__ import annotations

import pytest

from watchreload.frameworks import inner_reloader_off

CASES: list[tuple[str, dict[str, str], str | None]] = [
    ("python manage.py runserver", {}, "python manage.py runserver --noreload"),
    ("./manage.py runserver 8001", {}, "./manage.py runserver 8001 --noreload"),
    ("django-admin runserver", {}, "django-admin runserver --noreload"),
    ("python -m django runserver 0:8000", {}, "python -m django runserver 0:8000 --noreload"),
    ("python -u manage.py runserver", {}, "python -u manage.py runserver --noreload"),
    ("python manage.py runserver --noreload", {}, None),
    ("python manage.py migrate", {}, None),
    ("python manage.py", {}, None),
    ("flask run", {}, None),
    ("flask --app x run --reload", {}, "flask --app x run --no-reload"),
    ("flask run", {"FLASK_DEBUG": "1"}, "flask run --no-reload"),
    ("flask run --port 5001", {"FLASK_DEBUG": "0"}, None),
    ("flask --debug run", {}, "flask --debug run --no-reload"),
    ("flask --app x run --debug", {}, "flask --app x run --no-reload --debug"),
    ("flask --debug run --no-reload", {}, None),
    ("flask --app run routes", {}, None),  # an app named run, and the routes command
    ("python -m flask run --reload", {}, "python -m flask run --no-reload"),
    ("python -m flask run", {"FLASK_DEBUG": "true"}, "python -m flask run --no-reload"),
    ("uvicorn app:app --reload", {}, "uvicorn app:app"),
    ("uvicorn app:app", {}, None),
    (
        "python -m uvicorn app:app --reload --reload-dir src --port 8001",
        {},
        "python -m uvicorn app:app --port 8001",
    ),
    ("uvicorn app:app --reload --reload-include=*.html", {}, "uvicorn app:app"),
    ("python app.py --reload", {}, None),
    ("python -c pass", {}, None),
    ("gunicorn app:wsgi --reload", {}, None),
]


@pytest.mark.parametrize(("command", "env", "expected"), CASES)
def test_the_inner_reloader_is_turned_off(
    command: str, env: dict[str, str], expected: str | None
) -> None:
    result = inner_reloader_off(command.split(), env)
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert " ".join(result.command) == expected


def test_the_start_line_says_what_was_changed() -> None:
    result = inner_reloader_off(["python", "manage.py", "runserver"], {})
    assert result is not None
    assert result.describe() == "Django runserver's own reloader turned off (added --noreload)"
    uvicorn = inner_reloader_off(["uvicorn", "a:b", "--reload", "--reload-dir", "x"], {})
    assert uvicorn is not None
    expected = "uvicorn's own reloader turned off (dropped --reload, --reload-dir)"
    assert uvicorn.describe() == expected


def test_a_shell_command_is_left_alone() -> None:
    assert inner_reloader_off(["python", "manage.py", "runserver"], {}, shell=True) is None
