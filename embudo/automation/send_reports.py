"""Reads of sends for the CLI, the API and the pages: each send's progress (deliveries by state,
opens, clicks, unsubscribes) in one grouped query, and the report of one send (by link, the
funnel moves of its recipients after it, the conversions and revenue attribution gives e-mail)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Count, Exists, IntegerField, Min, OuterRef, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from embudo.analytics import attribution
from embudo.automation.engagement import CLICK
from embudo.automation.models import Delivery, DeliveryState, Send
from embudo.automation.sending import skip_reason_label
from embudo.crm.models import Contact, LifecycleStage, LifecycleTransition
from embudo.tracking.models import Channel, Event


@dataclass
class Progress:
    """Where a send's deliveries stand."""

    recipients: int = 0
    queued: int = 0
    #: claimed or being handed to the mail server right now
    in_flight: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    bounced: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.bounced

    @property
    def percent(self) -> float:
        """Share of the mailable recipients already handled (sent, failed or bounced)."""
        return 100.0 * self.done / self.recipients if self.recipients else 100.0

    def as_dict(self) -> dict[str, int | float]:
        return {**asdict(self), "percent": round(self.percent, 1)}


def progress(send_ids: Iterable[int]) -> dict[int, Progress]:
    """The progress of each send, all in one grouped query."""
    ids = list(send_ids)
    rows = (
        Delivery.objects.filter(send_id__in=ids)
        .values("send_id")
        .annotate(
            queued=Count("id", filter=Q(state=DeliveryState.QUEUED)),
            in_flight=Count(
                "id", filter=Q(state__in=(DeliveryState.CLAIMED, DeliveryState.SENDING))
            ),
            sent=Count("id", filter=Q(state=DeliveryState.SENT)),
            skipped=Count("id", filter=Q(state=DeliveryState.SKIPPED)),
            failed=Count("id", filter=Q(state=DeliveryState.FAILED)),
            bounced=Count("id", filter=Q(state=DeliveryState.BOUNCED)),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False)),
            unsubscribed=Count("id", filter=Q(unsubscribed_at__isnull=False)),
        )
    )
    recipients = dict(Send.objects.filter(pk__in=ids).values_list("pk", "recipients"))
    found = {pk: Progress(recipients=recipients.get(pk, 0)) for pk in ids}
    for grouped in rows:
        row: dict[str, Any] = dict(grouped)
        counts = {k: int(v) for k, v in row.items() if k != "send_id"}
        send_id = int(row["send_id"])
        found[send_id] = Progress(recipients=recipients.get(send_id, 0), **counts)
    return found


def skip_reasons(send: Send) -> dict[str, int]:
    """How many recipients were skipped, by reason."""
    rows = (
        Delivery.objects.filter(send=send, state=DeliveryState.SKIPPED)
        .values_list("skip_reason")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return {reason: n for reason, n in rows}


def contact_deliveries(contact: Contact, limit: int = 200) -> list[Delivery]:
    """A contact's messages for the timeline, newest first: those sent (or that failed,
    bounced or were skipped), each with its skip reason in words."""
    rows = list(
        Delivery.objects.filter(contact=contact)
        .exclude(state__in=(DeliveryState.QUEUED, DeliveryState.CLAIMED))
        .select_related("send", "version__template")
        .order_by("-created_at", "-id")[:limit]
    )
    for delivery in rows:
        delivery.skip_reason_label = skip_reason_label(delivery.skip_reason)  # type: ignore[attr-defined]
    return rows


@dataclass(frozen=True)
class LinkClicks:
    """The clicks on one link of a send's message."""

    #: the link's place in the message, counted from 0
    link: int
    #: where it leads (a personalised link leads to several places: the first in order)
    url: str
    clicks: int
    #: how many contacts clicked it
    contacts: int


def clicks_by_link(send: Send) -> list[LinkClicks]:
    """Each link of the send's message that was clicked, the most clicked-by-people first: one
    grouped query over the ``email_click`` events (bots' clicks are ``email_bot_click`` events,
    so they never count). The event type and the time bound use the events' (type, time) index;
    the send is a JSON key of the event's properties, read alike on SQLite and PostgreSQL."""
    rows = (
        Event.objects.filter(type=CLICK, occurred_at__gte=send.created_at, properties__send=send.pk)
        .values(link=Cast(KT("properties__link"), IntegerField()))
        .annotate(url=Min("url"), clicks=Count("id"), contacts=Count("contact", distinct=True))
        .order_by("-contacts", "-clicks", "link")
    )
    return [
        LinkClicks(
            link=int(row["link"]),
            url=str(row["url"]),
            clicks=int(row["clicks"]),
            contacts=int(row["contacts"]),
        )
        for row in rows
        if row["link"] is not None
    ]


@dataclass
class FunnelEffect:
    """What the recipients did in the funnel within ``days`` of their message."""

    days: int
    recipients: int
    mql: int
    sql: int
    customers: int
    #: the e-mail channel's credit in attribution over the send's window (linear model)
    attributed_conversions: float | None
    attributed_revenue: float | None
    currency: str


def funnel_effect(send: Send, days: int = 30) -> FunnelEffect:
    """Recipients who became MQL, SQL or customer within ``days`` of the message they were sent
    (one query, an EXISTS per stage), and what the attribution engine credits the ``email``
    channel with for the conversions in the send's window."""
    sent = Delivery.objects.filter(send=send, state=DeliveryState.SENT, contact__isnull=False)
    window = dt.timedelta(days=days)

    def became(stage: str) -> Exists:
        return Exists(
            LifecycleTransition.objects.filter(
                contact=OuterRef("contact"),
                to_stage=stage,
                changed_at__gte=OuterRef("sent_at"),
                changed_at__lt=OuterRef("sent_at") + window,
            )
        )

    counted = sent.aggregate(
        recipients=Count("id"),
        mql=Count("id", filter=Q(became(LifecycleStage.MQL))),
        sql=Count("id", filter=Q(became(LifecycleStage.SQL))),
        customers=Count("id", filter=Q(became(LifecycleStage.CUSTOMER))),
    )
    conversions: float | None = None
    revenue: float | None = None
    currency = ""
    if send.started_at is not None:
        start = timezone.localdate(send.started_at)
        result = attribution.attribution(
            attribution.AttributionRequest(
                date_from=start, date_to=start + window, models=("linear",)
            )
        )
        currency = result.currency
        row = next((r for r in result.rows if r.key == Channel.EMAIL), None)
        conversions = row.credit["linear"].conversions if row else 0.0
        revenue = row.credit["linear"].revenue if row else 0.0
    return FunnelEffect(
        days=days,
        attributed_conversions=conversions,
        attributed_revenue=revenue,
        currency=currency,
        **{k: int(v or 0) for k, v in counted.items()},
    )
