"""API keys as the events endpoint sees them: each key's verdict remembered for a few seconds.

The events endpoint is called thousands of times a second with the same few keys; looking the key
up once per request would cost more than storing the event. A revoked key therefore keeps working
for at most ``KEY_TTL`` seconds on a server process that saw it recently.
"""

from __future__ import annotations

import hashlib
import threading
import time

from embudo.accounts.actions import authenticate_api_key
from embudo.accounts.models import ApiKey

KEY_TTL = 10.0

_verdicts: dict[str, tuple[float, ApiKey | None]] = {}
_lock = threading.Lock()


def cached_api_key(secret: str) -> ApiKey | None:
    """The live key for ``secret`` (or None), as known at most ``KEY_TTL`` seconds ago."""
    digest = hashlib.sha256(secret.encode()).hexdigest()
    now = time.monotonic()
    cached = _verdicts.get(digest)
    if cached is not None and now - cached[0] < KEY_TTL:
        return cached[1]
    key = authenticate_api_key(secret)
    if key is not None:
        key.created_by  # noqa: B018 - load the actor once, not on every request
    with _lock:
        if len(_verdicts) > 1000:  # a flood of wrong keys must not grow memory
            _verdicts.clear()
        _verdicts[digest] = (now, key)
    return key


def forget() -> None:
    with _lock:
        _verdicts.clear()
