"""The API's shapes for segments, their members and personas."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Field, Schema

from embudo.segments.conditions import ConditionError, describe_condition
from embudo.segments.models import Persona, Segment, SegmentKind


class SegmentIn(Schema):
    name: str | None = None
    description: str | None = None
    kind: SegmentKind | None = Field(None, description="`dynamic` (default) or `static`.")
    conditions: Any = Field(
        None, description="The condition language's JSON (dynamic segments); see docs/segments.md."
    )


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    kind: str
    conditions: dict[str, Any]
    text: str = Field(description="The conditions as readable text.")
    count: int | None = Field(None, description="Members now (on single-segment reads).")
    created_at: dt.datetime
    updated_at: dt.datetime


class SegmentList(Schema):
    items: list[SegmentOut]


class MembersIn(Schema):
    contact_ids: list[int] = Field(description="Contact ids (at most 10,000 per call).")


class MembersChanged(Schema):
    changed: int = Field(description="How many contacts were added (or removed).")
    count: int = Field(description="Members now.")


class Count(Schema):
    count: int


class PreviewIn(Schema):
    conditions: Any


class PreviewOut(Schema):
    valid: bool
    count: int | None = None
    text: str = ""
    error: str = Field("", description="What is wrong, starting with the path of the wrong part.")


class MemberOut(Schema):
    id: int
    email: str | None
    name: str
    lifecycle_stage: str
    company: str | None
    persona: str | None


class MemberPage(Schema):
    items: list[MemberOut]
    count: int
    next: str | None


class PersonaIn(Schema):
    name: str | None = None
    description: str | None = None
    conditions: Any = None
    priority: int | None = Field(None, description="Lowest first; ties go to the oldest.")


class PersonaOut(Schema):
    id: int
    name: str
    description: str
    conditions: dict[str, Any]
    text: str
    priority: int
    contacts: int = Field(description="Contacts with this persona now.")


class PersonaList(Schema):
    items: list[PersonaOut]


def readable(conditions: Any) -> str:
    """The readable text of stored conditions; ones that no longer validate (a property since
    deleted, say) say what is wrong instead."""
    try:
        return describe_condition(conditions)
    except ConditionError as error:
        return f"invalid: {error}"


def segment_data(segment: Segment, count: int | None = None) -> dict[str, Any]:
    return {
        "id": segment.pk,
        "name": segment.name,
        "description": segment.description,
        "kind": segment.kind,
        "conditions": segment.conditions,
        "text": readable(segment.conditions) if segment.kind == SegmentKind.DYNAMIC else "",
        "count": count,
        "created_at": segment.created_at,
        "updated_at": segment.updated_at,
    }


def persona_data(persona: Persona, contacts: int) -> dict[str, Any]:
    return {
        "id": persona.pk,
        "name": persona.name,
        "description": persona.description,
        "conditions": persona.conditions,
        "text": readable(persona.conditions),
        "priority": persona.priority,
        "contacts": contacts,
    }
