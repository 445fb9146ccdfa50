"""Django integration: add "watchreload.django" to INSTALLED_APPS and `manage.py runserver`
reloads with watchreload (its backend choice, debouncing, Watchman subscriptions, settings from
`[tool.watchreload]` and `WATCHRELOAD_*`), while Django's own reloader hooks keep working.

Only `django.utils.autoreload.get_reloader` is replaced: Django's parent process, its child
start, `--noreload`, Ctrl-C and the terminal stay Django's own. See docs/django.md.
"""

from __future__ import annotations

__all__ = ["WatchreloadReloader", "get_reloader", "install"]


def __getattr__(name: str) -> object:
    # Lazy, so that importing the package for INSTALLED_APPS costs nothing until Django is set up.
    if name in __all__:
        from watchreload.django import reloader

        return getattr(reloader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
