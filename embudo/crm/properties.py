"""Typed custom properties: parsing a raw value into its type, and guessing a column's type."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from embudo.crm.models import PropertyType
from embudo.errors import EmbudoError

_TRUE = {"true", "yes", "y", "1", "si", "sí", "t"}
_FALSE = {"false", "no", "n", "0", "f"}
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d", "%d.%m.%Y")
_NAME = re.compile(r"[^a-z0-9]+")


class PropertyValueError(EmbudoError, ValueError):
    """A raw value does not fit its property's type; the message says why."""


def property_name(header: str) -> str:
    """The slug a header becomes as a custom property: ``"Lead Score %"`` → ``lead_score``."""
    return _NAME.sub("_", header.strip().lower()).strip("_")[:64]


def parse_number(raw: str) -> int | float:
    text = raw.strip().replace(" ", "")
    if not _NUMBER.match(text):
        raise PropertyValueError(f"{raw!r} is not a number")
    text = text.replace(",", ".")
    value = float(text)
    return (
        int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    )


def parse_boolean(raw: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PropertyValueError(f"{raw!r} is not a yes/no value")


def parse_date(raw: str) -> dt.date:
    text = raw.strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        pass
    for fmt in _DATE_FORMATS[1:]:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise PropertyValueError(f"{raw!r} is not a date (use YYYY-MM-DD)")


def parse_datetime(raw: str) -> dt.datetime:
    """An ISO date-time (or date, read as midnight UTC); naive values are taken as UTC."""
    text = raw.strip()
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        value = dt.datetime.combine(parse_date(text), dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def coerce(raw: Any, type_: str, choices: Iterable[str] = ()) -> Any:
    """The stored JSON value of ``raw`` for a property of ``type_``; ``None`` clears it."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if type_ == PropertyType.TEXT:
        return str(raw).strip()
    if type_ == PropertyType.NUMBER:
        if isinstance(raw, bool):
            raise PropertyValueError(f"{raw!r} is not a number")
        if isinstance(raw, int | float):
            return raw
        return parse_number(str(raw))
    if type_ == PropertyType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        return parse_boolean(str(raw))
    if type_ == PropertyType.DATE:
        if isinstance(raw, dt.date):
            return raw.isoformat()[:10]
        return parse_date(str(raw)).isoformat()
    if type_ == PropertyType.CHOICE:
        allowed = list(choices)
        value = str(raw).strip()
        if allowed and value not in allowed:
            raise PropertyValueError(f"{value!r} is not one of {', '.join(allowed)}")
        return value
    raise PropertyValueError(f"unknown property type {type_!r}")
