"""Reads of contacts, companies and their history, for the API, the pages and other apps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Model, Q, QuerySet
from django.db.models.functions import Lower

from embudo.accounts.actors import SYSTEM, Viewer
from embudo.accounts.roles import (
    contact_visibility,
    contact_visibility_branches,
    sees_all_contacts,
)
from embudo.crm.models import (
    Activity,
    Company,
    Contact,
    LifecycleTransition,
    PropertyDefinition,
)


@dataclass(frozen=True)
class ContactFilter:
    search: str = ""
    stage: str = ""
    owner_id: int | None = None
    unassigned: bool = False
    company_id: int | None = None
    updated_since: dt.datetime | None = None


def visible_contacts(user: Viewer) -> QuerySet[Contact]:
    if user is SYSTEM:
        return Contact.objects.all()
    return Contact.objects.filter(contact_visibility(user))


def contact_list(user: Viewer, filters: ContactFilter) -> QuerySet[Contact]:
    """Contacts the user may see, filtered, newest first, with company and owner joined."""
    query = visible_contacts(user).select_related("company", "owner")
    return _filter_contacts(query, filters).order_by("-id")


def contact_rows(
    user: Viewer, filters: ContactFilter, *, before: int | None = None, offset: int = 0, limit: int
) -> list[Contact]:
    """Rows ``offset`` to ``offset + limit`` of ``contact_list(user, filters)``, only those with
    an id below ``before`` when given -- read without sorting every visible contact.

    A sales rep sees "own OR unassigned": SQLite answers that by collecting both index ranges
    and sorting all of them (0.1 s at 100,000 contacts) just to show 50. Reading the newest ids
    of each branch along its own index and merging them costs a few milliseconds instead.
    """
    base = _filter_contacts(Contact.objects.all(), filters)
    if before is not None:
        base = base.filter(pk__lt=before)
    branches = [Q()] if user is SYSTEM else contact_visibility_branches(user)
    wanted = offset + limit
    if len(branches) == 1:
        query = base.filter(branches[0]).select_related("company", "owner").order_by("-id")
        return list(query[offset:wanted])
    newest: set[int] = set()
    for branch in branches:
        newest.update(base.filter(branch).order_by("-id").values_list("id", flat=True)[:wanted])
    ids = sorted(newest, reverse=True)[offset:wanted]
    rows = Contact.objects.filter(pk__in=ids).select_related("company", "owner").order_by("-id")
    return list(rows)


def _filter_contacts(query: QuerySet[Contact], filters: ContactFilter) -> QuerySet[Contact]:
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
    return query


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
    # Case-insensitive, as people read a list of names (served by the lower(name) index).
    return query.order_by(Lower("name"), "id")


def contact_ids_of_companies(company_ids: Iterable[int]) -> set[int]:
    """The contacts who work for these companies."""
    ids = sorted(set(company_ids))
    found: set[int] = set()
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        found.update(Contact.objects.filter(company_id__in=chunk).values_list("pk", flat=True))
    return found


def lifecycle_history(contact: Contact) -> QuerySet[LifecycleTransition]:
    return contact.transitions.select_related("actor").order_by("changed_at", "id")


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str  # "activity", "lifecycle", "event", "touchpoint" or "email"
    item: Any  # Activity, LifecycleTransition, tracking's Event or Touchpoint, a Delivery


def timeline(contact: Contact, limit: int = 200) -> list[TimelineEntry]:
    """Activities, lifecycle moves, events and touchpoints, newest first (one query each)."""
    from embudo.automation.send_reports import contact_deliveries
    from embudo.tracking.queries import contact_events, contact_touchpoints

    entries = [
        TimelineEntry(a.occurred_at, "activity", a)
        for a in contact.activities.select_related("actor").order_by("-occurred_at")[:limit]
    ] + [
        TimelineEntry(t.changed_at, "lifecycle", t)
        for t in contact.transitions.select_related("actor").order_by("-changed_at")[:limit]
    ]
    entries += [TimelineEntry(e.occurred_at, "event", e) for e in contact_events(contact, limit)]
    entries += [
        TimelineEntry(t.occurred_at, "touchpoint", t) for t in contact_touchpoints(contact, limit)
    ]
    entries += [
        TimelineEntry(d.sent_at or d.created_at, "email", d)
        for d in contact_deliveries(contact, limit)
    ]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


# -- pages: keyset paging, capped counts, typed properties --------------------------------------


@dataclass(frozen=True)
class ContactPage:
    """One page of a contact list, newest first, paged by id so every page costs the same."""

    contacts: list[Contact]
    newer: int | None  # pass as ``before`` to get the page above, None on the first page
    older: int | None  # pass as ``after`` to get the page below, None on the last page


def contact_page(
    user: Viewer,
    filters: ContactFilter,
    *,
    after: int | None = None,
    before: int | None = None,
    size: int = 25,
) -> ContactPage:
    """The ``size`` contacts just below id ``after`` (or just above id ``before``).

    Keyset paging instead of OFFSET: page 4,000 of 100,000 contacts costs what page 1 costs.
    Both directions read each visibility branch along its own index (see ``contact_rows``).
    """
    if before is None:
        rows = contact_rows(user, filters, before=after, limit=size + 1)
        has_older = len(rows) > size
        rows = rows[:size]
        return ContactPage(
            contacts=rows,
            newer=rows[0].pk if rows and after is not None else None,
            older=rows[-1].pk if rows and has_older else None,
        )
    base = _filter_contacts(Contact.objects.all(), filters).filter(pk__gt=before)
    branches = [Q()] if user is SYSTEM else contact_visibility_branches(user)
    oldest_first: set[int] = set()
    for branch in branches:
        ids = base.filter(branch).order_by("id").values_list("id", flat=True)[: size + 1]
        oldest_first.update(ids)
    above = sorted(oldest_first)[: size + 1]
    has_newer = len(above) > size
    page = list(
        Contact.objects.filter(pk__in=above[:size])
        .select_related("company", "owner")
        .order_by("-id")
    )
    return ContactPage(
        contacts=page,
        newer=page[0].pk if page and has_newer else None,
        older=page[-1].pk if page else None,
    )


def count_up_to(query: QuerySet[Any], cap: int) -> int:
    """How many rows ``query`` has, counting no further than ``cap`` (``cap + 1`` means more).

    A filtered COUNT over a large table scans every match; a cap bounds the cost of the figure.
    """
    return query.order_by()[: cap + 1].count()


def any_row(model: type[Model], **equal: Any) -> bool:
    """Whether ``model``'s table has a row whose columns equal ``equal``, read fresh.

    For checks made after every batch of events ("is anything configured?"): one raw lookup
    costs about 30 µs on SQLite, the ORM's ``exists()`` about ten times that."""
    quote = connection.ops.quote_name
    where = " AND ".join(f"{quote(column)} = %s" for column in equal) or "1 = 1"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {quote(model._meta.db_table)} WHERE {where} LIMIT 1",
            list(equal.values()),
        )
        return cursor.fetchone() is not None


def property_definitions(object_type: str) -> QuerySet[PropertyDefinition]:
    return PropertyDefinition.objects.filter(object_type=object_type).order_by("label", "name")


def visible_contact_counts(user: Viewer, company_ids: list[int]) -> dict[int, int]:
    """For each of these companies, how many of its contacts this user may see (one query)."""
    rows = (
        visible_contacts(user)
        .filter(company_id__in=company_ids)
        .values("company_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["company_id"]: row["n"] for row in rows}


def contact_owners() -> QuerySet[Any]:
    """Active users who may own contacts, for owner pickers and filters."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .order_by("first_name", "last_name", "username")
    )


@dataclass(frozen=True)
class ActivityFilter:
    contact_id: int | None = None
    kind: str = ""
    done: bool | None = None
    due_before: dt.datetime | None = None


def visible_activities(user: Viewer) -> QuerySet[Activity]:
    """Activities on contacts the user may see (``SYSTEM`` sees all)."""
    if user is SYSTEM or sees_all_contacts(user):
        return Activity.objects.all()
    return Activity.objects.filter(contact__in=visible_contacts(user))


def activity_list(user: Viewer, filters: ActivityFilter) -> QuerySet[Activity]:
    """Visible activities, filtered, most recent first, with their actor joined."""
    query = visible_activities(user).select_related("actor")
    if filters.contact_id is not None:
        query = query.filter(contact_id=filters.contact_id)
    if filters.kind:
        query = query.filter(kind=filters.kind)
    if filters.done is not None:
        query = query.filter(done=filters.done)
    if filters.due_before is not None:
        query = query.filter(due_at__lt=filters.due_before)
    return query.order_by("-occurred_at", "-id")
