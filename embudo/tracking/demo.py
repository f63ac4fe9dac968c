"""The demo company's captured behaviour: a year of page views, form submissions, e-mail clicks
and meetings for the demo contacts, loaded through the same door as real events
(:func:`~embudo.tracking.actions.record_events`) so visitors are stitched and touchpoints made.

A step of :mod:`embudo.demo.seed`: deterministic (its own random stream, dates from ``ctx.now``).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from embudo.tracking.actions import create_form, create_site_key, record_events
from embudo.tracking.models import EventSource, Touchpoint

SITE = "https://www.embudo-demo.example"
PAGES = [
    ("/", "Embudo: one funnel for marketing and sales"),
    ("/pricing", "Pricing"),
    ("/product/lead-scoring", "Lead scoring"),
    ("/product/handoff-sla", "Handoff and SLA"),
    ("/blog/smarketing-sla-playbook", "The smarketing SLA playbook"),
    ("/blog/mql-vs-sql", "MQL vs SQL: where to draw the line"),
    ("/customers", "Customers"),
    ("/demo", "Book a demo"),
]
REFERRERS = {
    ("google", "organic"): "https://www.google.com/",
    ("linkedin", "social"): "https://www.linkedin.com/",
    ("g2", "referral"): "https://www.g2.com/products/embudo/reviews",
    ("partner", "referral"): "https://partner-blog.example/crm-tools",
}
CHUNK = 1000

Event = dict[str, Any]


def seed_events(ctx: Any) -> None:
    """Events for every demo contact: anonymous visits that led to the sign-up form, then a
    life of page views, newsletter clicks, content and meetings that matches their funnel."""
    rng = ctx.rng("events")
    create_site_key("Demo website", [SITE])
    create_form(
        {
            "name": "Request a demo",
            "fields": [
                {"name": "email", "label": "Work email", "type": "email", "required": True,
                 "maps_to": "email"},
                {"name": "first_name", "label": "First name", "maps_to": "first_name"},
                {"name": "last_name", "label": "Last name", "maps_to": "last_name"},
                {"name": "job_title", "label": "Job title", "maps_to": "job_title"},
            ],
            "consent_text": "I agree to receive e-mails about Embudo",
            "thank_you_message": "Thanks! Someone from our team will be in touch today.",
            "allowed_origins": [SITE],
        }
    )  # fmt: skip
    before: list[Event] = []  # anonymous visits, before the person signs up
    signups: list[Event] = []  # the form submission that identifies them
    after: list[Event] = []
    clicks: list[Event] = []
    for contact in ctx.contacts:
        visitor = f"demo{contact.pk}"
        signed_up = contact.created_at
        source, medium = contact.original_source, contact.original_medium
        landing = _landing(rng, source, medium, contact.original_campaign)
        first_visit = signed_up - dt.timedelta(hours=rng.uniform(0.2, 240))
        before.append(
            _event(rng, "page_view", first_visit, visitor=visitor, new_session=True, **landing)
        )
        for _ in range(rng.randrange(0, 4)):
            when = first_visit + (signed_up - first_visit) * rng.random()
            before.append(_page_view(rng, when, visitor=visitor))
        signups.append(
            _event(
                rng,
                "form_submit",
                signed_up,
                visitor=visitor,
                contact_id=contact.pk,
                url=SITE + "/demo",
                properties={"form": "request-a-demo", "consent": True},
            )
        )
        stages = [stop.stage for stop in ctx.paths.get(contact.pk, [])]
        activity = 2 + 3 * len(stages)
        span = (ctx.now - signed_up).total_seconds()
        for _ in range(rng.randrange(activity // 2, activity + 1)):
            when = signed_up + dt.timedelta(seconds=rng.uniform(60, max(span, 120)))
            if when < ctx.now:
                after.append(_page_view(rng, when, visitor=visitor, contact_id=contact.pk))
        for month in range(rng.randrange(0, 5)):
            when = signed_up + dt.timedelta(days=15 + 30 * month + rng.uniform(0, 5))
            if when < ctx.now:
                campaign = rng.choice(["monthly-newsletter", "product-updates"])
                clicks.append(
                    _event(
                        rng,
                        "email_click",
                        when,
                        contact_id=contact.pk,
                        url=f"{SITE}/blog/mql-vs-sql?utm_source=newsletter&utm_medium=email"
                        f"&utm_campaign={campaign}",
                        properties={"email": campaign},
                    )
                )
        for stop in ctx.paths.get(contact.pk, []):
            if stop.stage == "sql" and stop.at < ctx.now:
                after.append(_event(rng, "meeting_booked", stop.at, contact_id=contact.pk))
    accepted = 0
    for source, events in (
        (EventSource.SNIPPET, before),
        (EventSource.FORM, signups),
        (EventSource.SNIPPET, after),
        (EventSource.PIXEL, clicks),
    ):
        events.sort(key=lambda e: e["occurred_at"])
        for start in range(0, len(events), CHUNK):
            result = record_events(events[start : start + CHUNK], source=source, now=ctx.now)
            if result.rejected:
                raise ValueError(f"demo events refused: {result.errors[:3]}")
            accepted += result.accepted
    ctx.counts["events"] = accepted
    ctx.counts["touchpoints"] = Touchpoint.objects.count()


def _event(
    rng: random.Random,
    type_: str,
    when: dt.datetime,
    *,
    visitor: str = "",
    contact_id: int | None = None,
    **fields: Any,
) -> Event:
    event: Event = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "type": type_,
        "occurred_at": when.isoformat(),
        **fields,
    }
    if visitor:
        event["visitor_id"] = visitor
    if contact_id is not None:
        event["contact_id"] = contact_id
    return event


def _page_view(rng: random.Random, when: dt.datetime, **who: Any) -> Event:
    path, title = rng.choice(PAGES[1:])
    return _event(rng, "page_view", when, url=SITE + path, properties={"title": title}, **who)


def _landing(rng: random.Random, source: str, medium: str, campaign: str) -> dict[str, Any]:
    """The first page a person saw, with the origin the CRM recorded for them."""
    path, title = rng.choice(PAGES[:6])
    url = SITE + path
    fields: dict[str, Any] = {"properties": {"title": title}}
    referrer = REFERRERS.get((source, medium))
    if referrer:
        fields["referrer"] = referrer
    elif source and source != "direct":
        url += f"?utm_source={source}&utm_medium={medium}"
        if campaign:
            url += f"&utm_campaign={campaign}"
    fields["url"] = url
    return fields
