"""The per-process caches, registered in one place: what a server process keeps in memory between
requests (API key verdicts, site keys, channel rules, scoring plans and SQL, the reports' kept
data), so that :func:`clear_all` can empty every one of them — between tests, or before
measuring a cold run.

A cache of what other processes may change bounds its age with a TTL (a change reaches them
within it); a change made in this process clears the cache at once.
"""

from __future__ import annotations

from collections.abc import Callable

_CLEARS: dict[str, Callable[[], None]] = {}


def register(name: str, clear: Callable[[], None]) -> None:
    """Add a per-process cache, by a name that says what it keeps, with how to empty it."""
    _CLEARS[name] = clear


def registered() -> list[str]:
    return sorted(_CLEARS)


def clear_all() -> None:
    """Empty every registered cache (those of modules not imported yet are empty anyway)."""
    for clear in list(_CLEARS.values()):
        clear()
