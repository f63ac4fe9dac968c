"""API keys as the events endpoint sees them: each key's verdict remembered for a few seconds.

The events endpoint is called thousands of times a second with the same few keys; looking the key
up once per request would cost more than storing the event. A revoked key therefore keeps working
for at most ``KEY_TTL`` seconds on a server process that saw it recently.
"""

from __future__ import annotations

import hashlib
import threading

from cachetools import TTLCache, cached

from embudo import caches
from embudo.accounts.actions import authenticate_api_key
from embudo.accounts.models import ApiKey

KEY_TTL = 10.0
# A flood of wrong keys must not grow memory: past this many verdicts the oldest go.
KEYS_KEPT = 1000


def _digest(secret: str) -> str:
    # Verdicts are kept by the key's digest, so the cache never holds a secret.
    return hashlib.sha256(secret.encode()).hexdigest()


@cached(TTLCache(maxsize=KEYS_KEPT, ttl=KEY_TTL), key=_digest, lock=threading.Lock())
def cached_api_key(secret: str) -> ApiKey | None:
    """The live key for ``secret`` (or None), as known at most ``KEY_TTL`` seconds ago."""
    key = authenticate_api_key(secret)
    if key is not None:
        key.created_by  # noqa: B018 - load the actor once, not on every request
    return key


caches.register("tracking.api_key_verdicts", cached_api_key.cache_clear)
