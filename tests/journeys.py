"""Declared journeys for tests: who the contacts are and what they did, when.

The idea of PostHog's ``journeys_for``: a test states, per contact, its fields, the lifecycle
stages it went through, the events it sent, the visits (touchpoints) that brought it and the deals
it was in, each at its moment; :func:`journeys` builds all of it through Embudo's own actions — the
CRM's for contacts and stages, capture's ``record_events`` for events and visits, the deals app's
for deals — as users and integrations would::

    people = journeys({
        "ana": person(at=days(-10), stage="lead", original_source="google",
                      touches=[Touch("paid_search", days(-9))],
                      deals=[Deal("1000", opened=days(-5), won=T0)]),
        "bo": person(stages=[("lead", days(-7)), ("mql", days(-6))]),
    })

Contacts are created in the order given; then each one's moments are played in time order (a
moment without a time is "now"; moments at the same time keep their declared order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from embudo.crm import actions as crm
from embudo.crm.models import Company, Contact, TransitionCause
from embudo.deals import actions as deals
from embudo.deals.models import Deal as DealRow
from embudo.tracking.actions import record_events
from embudo.tracking.models import Campaign, Touchpoint
from tests.factories import make_contact

T0 = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)


def days(n: float) -> dt.datetime:
    """``n`` days after (before, if negative) the journeys' reference moment T0."""
    return T0 + dt.timedelta(days=n)


# (stage, when) or (stage, when, cause): when None means now; the cause is manual unless given.
StageStep = tuple[str, dt.datetime | None] | tuple[str, dt.datetime | None, str]


@dataclass(frozen=True)
class Event:
    """``times`` events of ``type`` sent at ``at`` (``utm`` keys without their ``utm_`` prefix)."""

    type: str
    at: dt.datetime
    times: int = 1
    url: str = ""
    utm: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Touch:
    """A visit that came from ``channel`` (tagged with ``campaign``, if any)."""

    channel: str
    at: dt.datetime
    campaign: Campaign | None = None


@dataclass(frozen=True)
class Deal:
    """A deal opened at ``opened`` (its contacts become opportunities) and, if ``won`` is given,
    won then (they become customers); ``shared_with`` names other people of the same
    :func:`journeys` in the deal."""

    amount: str | Decimal
    opened: dt.datetime
    won: dt.datetime | None = None
    currency: str | None = None
    shared_with: Sequence[str] = ()


@dataclass(frozen=True)
class Person:
    """A contact to create (``fields`` as the CRM takes them, in ``stage`` at ``at``, for
    ``cause``) and the moments of its journey."""

    fields: Mapping[str, Any]
    at: dt.datetime | None = None
    stage: str | None = None
    cause: str = TransitionCause.MANUAL
    stages: Sequence[StageStep] = ()
    events: Sequence[Event] = ()
    touches: Sequence[Touch] = ()
    deals: Sequence[Deal] = ()


def person(
    *,
    at: dt.datetime | None = None,
    stage: str | None = None,
    cause: str = TransitionCause.MANUAL,
    company: Company | None = None,
    stages: Sequence[StageStep] = (),
    events: Sequence[Event] = (),
    touches: Sequence[Touch] = (),
    deals: Sequence[Deal] = (),
    **fields: Any,
) -> Person:
    """Declare a person; nothing is written until :func:`journeys` or :func:`journey`."""
    if company is not None:
        fields["company_id"] = company.pk
    return Person(fields, at, stage, cause, stages, events, touches, deals)


def journeys(people: Mapping[str, Person]) -> dict[str, Contact]:
    """Create the people, then play each one's journey; returns the contacts as stored after."""
    contacts = {key: _create(spec) for key, spec in people.items()}
    for key, spec in people.items():
        _play(contacts[key], spec, contacts)
    for contact in contacts.values():
        contact.refresh_from_db()
    return contacts


def journey(
    who: Person | Contact,
    *,
    stages: Sequence[StageStep] = (),
    events: Sequence[Event] = (),
    touches: Sequence[Touch] = (),
    deals: Sequence[Deal] = (),
) -> Contact:
    """One contact's journey: a new person's as declared, or what an existing contact does next
    (the moments given here)."""
    if isinstance(who, Person):
        if stages or events or touches or deals:
            raise TypeError("declare a new person's moments in person(...)")
        contact, spec = _create(who), who
    else:
        contact, spec = who, Person({}, stages=stages, events=events, touches=touches, deals=deals)
    _play(contact, spec, {})
    contact.refresh_from_db()
    return contact


# -- building ------------------------------------------------------------------------------------

# The UTM parameters of a visit that the default channel rules file under each channel; a visit
# without any (a new session, no referrer) is direct.
VISIT_UTM: dict[str, dict[str, str]] = {
    "direct": {},
    "organic_search": {"utm_source": "google"},
    "paid_search": {"utm_source": "google", "utm_medium": "cpc"},
    "organic_social": {"utm_source": "facebook"},
    "paid_social": {"utm_source": "facebook", "utm_medium": "paid_social"},
    "email": {"utm_source": "newsletter", "utm_medium": "email"},
    "referral": {"utm_source": "partner.example", "utm_medium": "referral"},
    "display": {"utm_source": "adnetwork", "utm_medium": "display"},
    "affiliate": {"utm_source": "partner", "utm_medium": "affiliate"},
    "other": {"utm_source": "somewhere", "utm_medium": "unlisted"},
}

Moment = tuple[dt.datetime, Callable[[], object]]


def _create(spec: Person) -> Contact:
    fields = dict(spec.fields)
    if spec.stage:
        fields["lifecycle_stage"] = spec.stage
    return make_contact(at=spec.at, cause=spec.cause, **fields)


def _play(contact: Contact, spec: Person, named: Mapping[str, Contact]) -> None:
    moments = [_stage(contact, step) for step in spec.stages]
    moments += [_event(contact, event) for event in spec.events]
    moments += [_touch(contact, touch) for touch in spec.touches]
    for deal in spec.deals:
        moments += _deal([contact, *(named[key] for key in deal.shared_with)], deal)
    for _, happen in sorted(moments, key=lambda moment: moment[0]):
        happen()


def _stage(contact: Contact, step: StageStep) -> Moment:
    stage, at, *given = step
    cause = given[0] if given else TransitionCause.MANUAL

    def move() -> None:
        # A deal moves its contacts through copies of them: the move starts from the stored stage.
        contact.refresh_from_db(fields=["lifecycle_stage", "lifecycle_stage_changed_at"])
        crm.set_lifecycle_stage(contact, stage, cause=cause, at=at)

    return at or timezone.now(), move


def _send(contact: Contact, items: list[dict[str, Any]], at: dt.datetime) -> list[str]:
    """Send events as an integration does; the contact keeps the original source declared."""
    raw = [{"contact_id": contact.pk, "occurred_at": at.isoformat(), **item} for item in items]
    result = record_events(raw, source="api", now=at, first_touch=False)
    assert result.accepted == len(items), result.errors
    return result.event_ids


def _event(contact: Contact, event: Event) -> Moment:
    item: dict[str, Any] = {"type": event.type}
    item.update({f"utm_{name}": value for name, value in event.utm.items()})
    if event.url:
        item["url"] = event.url
    if event.properties:
        item["properties"] = dict(event.properties)
    return event.at, lambda: _send(contact, [item] * event.times, event.at)


def _touch(contact: Contact, touch: Touch) -> Moment:
    """A page view starting a visit whose UTM the channel rules file under the touch's channel."""
    item: dict[str, Any] = {"type": "page_view", "new_session": True, **VISIT_UTM[touch.channel]}
    item["url"] = "https://embudo.example/"
    if touch.campaign is not None:
        item["utm_campaign"] = touch.campaign.name

    def visit() -> None:
        [event_id] = _send(contact, [item], touch.at)
        recorded = Touchpoint.objects.get(event_id=event_id)
        campaign_id = touch.campaign.pk if touch.campaign else None
        assert (recorded.channel, recorded.campaign_id) == (touch.channel, campaign_id), touch

    return touch.at, visit


def _deal(contacts: list[Contact], deal: Deal) -> list[Moment]:
    data: dict[str, Any] = {
        "name": "Deal",
        "amount": str(deal.amount),
        "expected_close_date": (deal.won or deal.opened).date().isoformat(),
        "contact_ids": [c.pk for c in contacts],
    }
    if deal.currency:
        data["currency"] = deal.currency
    opened: list[DealRow] = []
    moments: list[Moment] = [
        (deal.opened, lambda: opened.append(deals.create_deal(data, at=deal.opened)))
    ]
    if deal.won is not None:
        won = deal.won
        moments.append((won, lambda: deals.win_deal(opened[0], at=won)))
    return moments
