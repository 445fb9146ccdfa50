"""The AppConfig that puts watchreload under `manage.py runserver`."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig  # type: ignore[import-untyped, import-not-found, unused-ignore]


class WatchreloadConfig(AppConfig):  # type: ignore[misc, unused-ignore]
    name = "watchreload.django"
    label = "watchreload"
    verbose_name = "watchreload"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Install while Django creates the app configs (the first phase of django.setup()), not
        # in ready(): an app whose models module fails to import (a syntax error) stops setup
        # before any ready() runs, and the reloader must still be watchreload's so that fixing
        # the error reloads as it does under plain runserver.
        from watchreload.django.reloader import install

        install()
