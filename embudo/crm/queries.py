"""Reads of contacts, companies and their history, for the API, the pages and other apps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from embudo.accounts.roles import contact_visibility
from embudo.crm.models import Activity, Company, Contact, LifecycleTransition


@dataclass(frozen=True)
class ContactFilter:
    search: str = ""
    stage: str = ""
    owner_id: int | None = None
    unassigned: bool = False
    company_id: int | None = None
    updated_since: dt.datetime | None = None


def visible_contacts(user: Any) -> QuerySet[Contact]:
    return Contact.objects.filter(contact_visibility(user))


def contact_list(user: Any, filters: ContactFilter) -> QuerySet[Contact]:
    """Contacts the user may see, filtered, newest first, with company and owner joined."""
    query = visible_contacts(user).select_related("company", "owner")
    if filters.stage:
        query = query.filter(lifecycle_stage=filters.stage)
    if filters.owner_id is not None:
        query = query.filter(owner_id=filters.owner_id)
    if filters.unassigned:
        query = query.filter(owner__isnull=True)
    if filters.company_id is not None:
        query = query.filter(company_id=filters.company_id)
    if filters.updated_since is not None:
        query = query.filter(updated_at__gte=filters.updated_since)
    if term := filters.search.strip():
        query = query.filter(_contact_search(term))
    return query.order_by("-id")


def _contact_search(term: str) -> Q:
    if "@" in term:
        return Q(email__startswith=term.lower())
    words = term.split()
    if len(words) >= 2:
        return Q(first_name__istartswith=words[0], last_name__istartswith=" ".join(words[1:]))
    return (
        Q(first_name__istartswith=term)
        | Q(last_name__istartswith=term)
        | Q(email__startswith=term.lower())
        | Q(external_id=term)
    )


def company_list(search: str = "") -> QuerySet[Company]:
    query = Company.objects.all()
    if term := search.strip():
        query = query.filter(Q(name__istartswith=term) | Q(domain__startswith=term.lower()))
    return query.order_by("name", "id")


def lifecycle_history(contact: Contact) -> QuerySet[LifecycleTransition]:
    return contact.transitions.select_related("actor").order_by("changed_at", "id")


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str  # "activity" or "lifecycle"
    item: Activity | LifecycleTransition


def timeline(contact: Contact, limit: int = 200) -> list[TimelineEntry]:
    """Activities and lifecycle moves, newest first."""
    entries = [
        TimelineEntry(a.occurred_at, "activity", a)
        for a in contact.activities.select_related("actor").order_by("-occurred_at")[:limit]
    ] + [
        TimelineEntry(t.changed_at, "lifecycle", t)
        for t in contact.transitions.select_related("actor").order_by("-changed_at")[:limit]
    ]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]
