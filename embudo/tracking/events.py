"""Checking one raw event (from the API, the snippet, a form or an import file) before storing it.

Pure Python, no database: every item of a batch is judged on its own, and a bad one is turned
into a reason naming the field and the problem while the good ones go on. This runs once per
event on the ingest hot path, so it stays lean: plain type checks, no schema library.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from embudo.errors import EmbudoError

# Well-known event types; any other name matching EVENT_TYPE is a custom event.
KNOWN_TYPES = (
    "page_view",
    "form_submit",
    "email_open",
    "email_click",
    "content_view",
    "meeting_booked",
    "identify",
)
EVENT_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\- ]{0,63}")
VISITOR_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
TRAIT_FIELDS = ("first_name", "last_name", "phone", "job_title")
FIELDS = frozenset(
    (
        "event_id",
        "type",
        "contact_id",
        "email",
        "external_id",
        "visitor_id",
        "traits",
        "properties",
        "url",
        "referrer",
        "occurred_at",
        "new_session",
        *UTM_FIELDS,
    )
)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# Clocks drift; a day ahead is a wrong clock or a wrong year, not drift.
MAX_AHEAD = dt.timedelta(days=1)
MAX_URL = 2048
MAX_TEXT = 255


class Invalid(EmbudoError, ValueError):
    """Why one event was refused; ``field`` names the offending field when there is one."""

    def __init__(self, reason: str, field: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass(slots=True)
class ParsedEvent:
    index: int
    id: str  # 32 lower-case hex digits: the form SQLite stores and sets compare cheaply
    type: str
    contact_id: int | None
    email: str | None
    external_id: str | None
    visitor_id: str
    traits: dict[str, str]
    properties: dict[str, Any]
    url: str
    referrer: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_term: str
    utm_content: str
    occurred_at: dt.datetime
    new_session: bool


def parse_event(
    raw: Any,
    index: int,
    now: dt.datetime,
    *,
    allowed: frozenset[str] = FIELDS,
) -> ParsedEvent:
    """The event ``raw`` describes, or :class:`Invalid` with the reason it cannot be stored.

    ``allowed`` narrows the accepted fields (the public snippet may not name contacts by id).
    """
    if type(raw) is not dict:
        raise Invalid(f"an event must be a JSON object, not {_json_type(raw)}")
    unknown = raw.keys() - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"unknown field {name!r}", name)

    get = raw.get
    type_ = get("type")
    if type(type_) is not str or not EVENT_TYPE.fullmatch(type_):
        if type_ is None:
            raise Invalid("type is required", "type")
        raise Invalid(
            f"type {type_!r} is not an event name (letters, digits, _ . : - and spaces, "
            "at most 64 characters)",
            "type",
        )

    event_id = get("event_id")
    if event_id is None:
        id_ = uuid.uuid4().hex
    elif type(event_id) is str and UUID_TEXT.fullmatch(event_id):
        id_ = event_id.replace("-", "").lower()
    else:
        raise Invalid(f"event_id {event_id!r} is not a UUID", "event_id")

    contact_id = get("contact_id")
    if contact_id is not None and (type(contact_id) is not int or contact_id <= 0):
        raise Invalid(f"contact_id {contact_id!r} is not a contact id", "contact_id")
    email = get("email")
    if email is not None:
        if type(email) is not str or "@" not in email or len(email) > 254:
            raise Invalid(f"email {email!r} is not an email address", "email")
        email = email.strip().lower()
    external_id = get("external_id")
    if external_id is not None:
        if type(external_id) is int:
            external_id = str(external_id)
        elif type(external_id) is not str or not external_id.strip() or len(external_id) > 128:
            raise Invalid(f"external_id {external_id!r} is not an external id", "external_id")
        external_id = external_id.strip()
    visitor_id = get("visitor_id")
    if visitor_id is None:
        visitor_id = ""
    elif type(visitor_id) is not str or not VISITOR_ID.fullmatch(visitor_id):
        raise Invalid(
            f"visitor_id {visitor_id!r} is not a visitor id (1-64 letters, digits, _ or -)",
            "visitor_id",
        )
    if contact_id is None and email is None and external_id is None and not visitor_id:
        raise Invalid(
            "an event needs a contact (contact_id, email or external_id) or a visitor_id",
            "contact_id",
        )

    occurred = get("occurred_at")
    occurred_at = now if occurred is None else _timestamp(occurred, now)

    properties = get("properties")
    if properties is None:
        properties = {}
    elif type(properties) is not dict:
        raise Invalid(
            f"properties must be a JSON object, not {_json_type(properties)}", "properties"
        )
    traits = get("traits")
    traits = {} if traits is None else _traits(traits)

    url = get("url") or ""
    if type(url) is not str or len(url) > MAX_URL:
        url = _text(url, "url", MAX_URL)
    elif not url.isascii() and len(url.encode()) > MAX_URL:
        # The URL is a key of the events-by-type index; PostgreSQL caps an index entry's size.
        raise Invalid(f"url is longer than {MAX_URL} bytes; send it percent-encoded", "url")
    referrer = get("referrer") or ""
    if type(referrer) is not str or len(referrer) > MAX_URL:
        referrer = _text(referrer, "referrer", MAX_URL)
    utm: Sequence[str]
    if not raw.keys().isdisjoint(UTM_FIELDS):
        utm = [_text(get(name), name, MAX_TEXT) for name in UTM_FIELDS]
    elif "utm_" in url:
        utm = _utm_from(url)
    else:
        utm = _NO_UTM
    new_session = get("new_session", False)
    if type(new_session) is not bool:
        raise Invalid(f"new_session must be true or false, not {new_session!r}", "new_session")

    return ParsedEvent(
        index,
        id_,
        type_,
        contact_id,
        email,
        external_id,
        visitor_id,
        traits,
        properties,
        url,
        referrer,
        utm[0],
        utm[1],
        utm[2],
        utm[3],
        utm[4],
        occurred_at,
        new_session,
    )


_NO_UTM = ("", "", "", "", "")


def _timestamp(value: Any, now: dt.datetime) -> dt.datetime:
    if type(value) is str:
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(
                f"occurred_at {value!r} is not an ISO 8601 date-time (like 2026-03-01T09:30:00Z)",
                "occurred_at",
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    elif type(value) is int or type(value) is float:
        try:
            when = dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise Invalid(f"occurred_at {value!r} is out of range", "occurred_at") from None
    else:
        raise Invalid(
            f"occurred_at must be an ISO 8601 string or seconds since 1970, not "
            f"{_json_type(value)}",
            "occurred_at",
        )
    if when < EARLIEST:
        raise Invalid(f"occurred_at {value!r} is before 2000", "occurred_at")
    if when > now + MAX_AHEAD:
        raise Invalid(f"occurred_at {value!r} is more than a day in the future", "occurred_at")
    return when


def _text(value: Any, field: str, limit: int) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise Invalid(f"{field} must be a string, not {_json_type(value)}", field)
    if len(value) > limit:
        raise Invalid(f"{field} is longer than {limit} characters", field)
    return value


def _traits(value: Any) -> dict[str, str]:
    if type(value) is not dict:
        raise Invalid(f"traits must be a JSON object, not {_json_type(value)}", "traits")
    traits: dict[str, str] = {}
    for name, item in value.items():
        if name not in TRAIT_FIELDS:
            raise Invalid(
                f"unknown trait {name!r}; traits are {', '.join(TRAIT_FIELDS)}", f"traits.{name}"
            )
        traits[name] = _text(item, f"traits.{name}", MAX_TEXT).strip()
    return traits


def _utm_from(url: str) -> Sequence[str]:
    try:
        query = parse_qs(urlsplit(url).query)
    except ValueError:
        return _NO_UTM
    return [query.get(name, [""])[0][:MAX_TEXT] for name in UTM_FIELDS]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
