"""Identity stitching: anonymous visits join the contact once the visitor is identified, and a
merge of two contacts brings their events along."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from embudo.crm import actions as crm
from embudo.crm.queries import timeline
from embudo.tracking.actions import identify_visitor, record_events
from embudo.tracking.models import Event, Touchpoint, Visitor
from tests.factories import make_contact

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def page_view(visitor: str, minutes: int, **fields: object) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "page_view",
        "visitor_id": visitor,
        "occurred_at": (T0 + dt.timedelta(minutes=minutes)).isoformat(),
        "url": "https://acme.test/",
        **fields,
    }


def test_identify_event_attaches_earlier_anonymous_visits_and_touchpoints() -> None:
    record_events(
        [
            page_view("v-anna", 0, referrer="https://www.google.com/", new_session=True),
            page_view("v-anna", 5, url="https://acme.test/pricing"),
        ],
        source="snippet",
    )
    assert Event.objects.filter(contact__isnull=True).count() == 2

    record_events(
        [{"type": "identify", "visitor_id": "v-anna", "email": "anna@example.com"}],
        source="snippet",
    )

    events = Event.objects.filter(contact__email="anna@example.com")
    assert events.count() == 3
    touchpoint = Touchpoint.objects.get()
    assert touchpoint.contact is not None and touchpoint.contact.email == "anna@example.com"
    contact = touchpoint.contact
    assert (contact.original_source, contact.original_medium) == ("google.com", "organic")
    assert Visitor.objects.get(pk="v-anna").contact_id == contact.pk


def test_events_after_identification_go_straight_to_the_contact() -> None:
    contact = make_contact()
    identify_visitor("v-bo", contact)

    record_events([page_view("v-bo", 30)], source="snippet")

    assert Event.objects.get().contact_id == contact.pk


def test_anonymous_views_show_on_the_timeline_after_identification() -> None:
    contact = make_contact()
    record_events([page_view("v-cy", 0), page_view("v-cy", 1)], source="snippet")

    moved = identify_visitor("v-cy", contact)

    assert moved == 2
    kinds = [entry.kind for entry in timeline(contact)]
    assert kinds.count("event") == 2


def test_original_source_is_set_once_by_the_first_touch() -> None:
    contact = make_contact()
    record_events(
        [
            page_view("v-d", 0, contact_id=contact.pk, utm_source="linkedin", utm_medium="cpc"),
            page_view(
                "v-d", 60, contact_id=contact.pk, utm_source="newsletter", utm_medium="email"
            ),
        ],
        source="api",
    )
    record_events(
        [page_view("v-d", 90, contact_id=contact.pk, referrer="https://www.bing.com/")],
        source="api",
    )

    contact.refresh_from_db()
    assert (contact.original_source, contact.original_medium) == ("linkedin", "cpc")
    assert Touchpoint.objects.filter(contact=contact).count() == 3


def test_merged_contacts_keep_both_event_histories() -> None:
    primary, duplicate = make_contact(), make_contact()
    record_events(
        [
            page_view("v-e1", 0, contact_id=primary.pk, utm_source="google", utm_medium="cpc"),
            page_view(
                "v-e2", 1, contact_id=duplicate.pk, utm_source="newsletter", utm_medium="email"
            ),
            page_view("v-e2", 2, contact_id=duplicate.pk),
        ],
        source="api",
    )

    crm.merge_contacts(primary, duplicate)

    assert Event.objects.filter(contact=primary).count() == 3
    assert Touchpoint.objects.filter(contact=primary).count() == 2
    assert Visitor.objects.get(pk="v-e2").contact_id == primary.pk


def test_deleting_a_contact_erases_its_events() -> None:
    contact = make_contact()
    record_events([page_view("v-f", 0, contact_id=contact.pk)], source="api")

    crm.delete_contact(contact)

    assert Event.objects.count() == 0
    assert Visitor.objects.get(pk="v-f").contact_id is None
