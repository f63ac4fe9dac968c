"""``POST /api/v1/events``: server-side events, one or a batch, idempotent on ``event_id``.

Requests with a valid ingest key are answered by :mod:`embudo.tracking.shortcut`, a middleware
ahead of the session, locale, CSRF and auth layers, with this module's :func:`ingest`; the rest
(a browser session, a wrong key) go through the ninja endpoint below, which also documents the
operation.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router
from ninja.security import HttpBearer

from embudo.accounts.models import Scope
from embudo.api_access import ApiError, Principal, Session, principal
from embudo.tracking.actions import MAX_BATCH, record_events
from embudo.tracking.keys import cached_api_key
from embudo.tracking.models import EventSource

router: Router = Router(tags=["events"])

MAX_BODY = 1024 * 1024


class CachedBearerKey(HttpBearer):
    """Bearer-key auth backed by :mod:`embudo.tracking.keys`' short-lived cache."""

    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        key = cached_api_key(token)
        return Principal(api_key=key) if key is not None else None


EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "event_id": {"type": "string", "format": "uuid", "description": "idempotency key"},
        "type": {"type": "string", "example": "page_view"},
        "contact_id": {"type": "integer"},
        "email": {"type": "string", "description": "an unknown email creates the contact"},
        "external_id": {"type": "string"},
        "visitor_id": {"type": "string"},
        "traits": {"type": "object", "description": "first_name, last_name, phone, job_title"},
        "properties": {"type": "object"},
        "url": {"type": "string"},
        "referrer": {"type": "string"},
        "utm_source": {"type": "string"},
        "utm_medium": {"type": "string"},
        "utm_campaign": {"type": "string"},
        "utm_term": {"type": "string"},
        "utm_content": {"type": "string"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "new_session": {"type": "boolean"},
    },
}


@router.post(
    "/events",
    url_name="ingest_events",
    auth=[CachedBearerKey(), Session(csrf=True)],
    summary="Record one event or a batch",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            EVENT_SCHEMA,
                            {
                                "type": "object",
                                "required": ["events"],
                                "properties": {
                                    "events": {
                                        "type": "array",
                                        "maxItems": MAX_BATCH,
                                        "items": EVENT_SCHEMA,
                                    }
                                },
                            },
                        ]
                    }
                }
            },
        }
    },
)
def ingest_events(request: HttpRequest) -> HttpResponse:
    """Store events after checking each on its own; answers once they are committed, with the
    counts accepted / duplicate / rejected and a reason for each rejected item."""
    return ingest(request, principal(request))


def ingest(request: HttpRequest, caller: Principal) -> HttpResponse:
    caller.require(Scope.INGEST)
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"the body is over {MAX_BODY} bytes (1 MB)")
    body = request.body
    if len(body) > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"the body is over {MAX_BODY} bytes (1 MB)")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "bad_request", f"the body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "bad_request", 'send one event object or {"events": [...]}')
    single = "events" not in payload
    if single:
        items = [payload]
    else:
        items = payload["events"]
        if not isinstance(items, list):
            raise ApiError(400, "bad_request", "'events' must be an array of event objects")
        if len(payload) > 1:
            extra = sorted(set(payload) - {"events"})[0]
            raise ApiError(400, "bad_request", f"unknown field {extra!r} next to 'events'")
        if len(items) > MAX_BATCH:
            raise ApiError(
                413,
                "payload_too_large",
                f"{len(items)} events in one request; send at most {MAX_BATCH}",
            )
    result = record_events(items, source=EventSource.API, actor=caller.actor, grouped=True)
    body_out = result.as_dict()
    if single:
        if result.rejected:
            refused = result.errors[0]
            body_out["error"] = {
                "code": "validation_error",
                "message": refused["reason"],
                "fields": {refused.get("field") or "event": [refused["reason"]]},
            }
            return _json(body_out, 422)
        body_out["event_id"] = str(uuid.UUID(result.event_ids[0]))
    return _json(body_out, 200)


def _json(body: dict[str, Any], status: int) -> HttpResponse:
    # Rendered here rather than by the router's renderer: this endpoint is the hot path.
    return HttpResponse(
        json.dumps(body, ensure_ascii=False), status=status, content_type="application/json"
    )
