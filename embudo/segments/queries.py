"""Reads of segments and personas for the pages, the API and other apps: a segment's contacts
(its conditions evaluated now, or its list), counts, and a contact's persona."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet

from embudo.accounts.actors import Viewer
from embudo.crm import queries as crm_queries
from embudo.crm.models import Contact
from embudo.segments.conditions import compile_condition
from embudo.segments.models import Persona, PersonaAssignment, Segment, SegmentKind, SegmentMember


def segment_q(segment: Segment, now: dt.datetime | None = None) -> Q:
    """The ``Q`` over contacts for a segment's members: its conditions, or its list."""
    if segment.kind == SegmentKind.STATIC:
        return Q(pk__in=SegmentMember.objects.filter(segment=segment).values("contact_id"))
    return compile_condition(segment.conditions, now=now)


def segment_contacts(segment: Segment, user: Viewer = crm_queries.SYSTEM) -> QuerySet[Contact]:
    """The segment's contacts that ``user`` may see (everyone for the system), newest first."""
    return crm_queries.visible_contacts(user).filter(segment_q(segment)).order_by("-id")


def segment_count(segment: Segment, user: Viewer = crm_queries.SYSTEM) -> int:
    return crm_queries.visible_contacts(user).filter(segment_q(segment)).count()


def condition_count(condition: Any, user: Viewer = crm_queries.SYSTEM) -> int:
    """How many contacts ``user`` may see match a condition (the editor's live count)."""
    return crm_queries.visible_contacts(user).filter(compile_condition(condition)).count()


def segment_by_name(name: str) -> Segment | None:
    return Segment.objects.filter(name=name).first()


def personas() -> QuerySet[Persona]:
    return Persona.objects.order_by("priority", "id")


def persona_of(contact: Contact | int) -> Persona | None:
    """The persona a contact has now (the stored assignment)."""
    contact_id = contact if isinstance(contact, int) else contact.pk
    row = PersonaAssignment.objects.select_related("persona").filter(contact_id=contact_id).first()
    return row.persona if row else None


def persona_names(contact_ids: Iterable[int]) -> dict[int, str]:
    """Contact id → persona name for those that have one (one query)."""
    return dict(
        PersonaAssignment.objects.filter(contact_id__in=list(contact_ids)).values_list(
            "contact_id", "persona__name"
        )
    )


def persona_counts() -> dict[int, int]:
    """Persona id → how many contacts have it."""
    from django.db.models import Count

    rows = PersonaAssignment.objects.values("persona_id").annotate(n=Count("pk"))
    return {row["persona_id"]: row["n"] for row in rows}


def has_personas() -> bool:
    """Whether any persona is defined, read fresh (asked after every batch of events)."""
    return crm_queries.any_row(Persona)
