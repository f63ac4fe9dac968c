"""Per-client request limits for the public endpoints (forms, collect, pixel), kept in Django's
cache: a fixed window counter per (scope, client address).

With the default local-memory cache each server process counts on its own, so N processes let
through up to N times the limit; configure a shared cache (Redis, database) to make it exact.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def allow(scope: str, client: str, limit: int, window: int) -> bool:
    """Count one request; False once ``client`` has made more than ``limit`` in this window."""
    bucket = int(time.time() // window)
    key = f"embudo:rl:{scope}:{client}:{bucket}"
    if cache.add(key, 1, timeout=window + 1):
        return True
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this is the window's first request
        cache.add(key, 1, timeout=window + 1)
        return True
    return count <= limit
