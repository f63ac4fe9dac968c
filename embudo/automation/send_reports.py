"""Reads of sends for the CLI, the API and the pages: each send's progress (deliveries by state,
opens, clicks, unsubscribes) in one grouped query, and the report of one send (by link, the
funnel moves of its recipients after it, the conversions and revenue attribution gives e-mail),
and the report of a template across every send of it, built from the same funnel query."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Count, Exists, IntegerField, Max, Min, OuterRef, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from embudo.analytics import attribution
from embudo.automation.engagement import CLICK
from embudo.automation.models import Delivery, DeliveryState, EmailTemplate, Send
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
    #: the e-mail channel's credit in attribution over the sending window (linear model)
    attributed_conversions: float | None
    attributed_revenue: float | None
    currency: str


def _became(stage: str, window: dt.timedelta) -> Exists:
    """The delivery's contact reached ``stage`` within ``window`` of the message being sent."""
    return Exists(
        LifecycleTransition.objects.filter(
            contact=OuterRef("contact"),
            to_stage=stage,
            changed_at__gte=OuterRef("sent_at"),
            changed_at__lt=OuterRef("sent_at") + window,
        )
    )


def _funnel_moves(window: dt.timedelta) -> dict[str, Count]:
    """The aggregates of a deliveries query that count the sent messages whose recipient became
    MQL, SQL or customer within ``window`` of theirs (an EXISTS per stage): one builder for the
    report of a send and of a template."""
    sent = Q(state=DeliveryState.SENT, contact__isnull=False)
    return {
        "recipients": Count("contact", distinct=True, filter=sent),
        "mql": Count(
            "contact", distinct=True, filter=sent & Q(_became(LifecycleStage.MQL, window))
        ),
        "sql": Count(
            "contact", distinct=True, filter=sent & Q(_became(LifecycleStage.SQL, window))
        ),
        "customers": Count(
            "contact", distinct=True, filter=sent & Q(_became(LifecycleStage.CUSTOMER, window))
        ),
    }


def _funnel_effect(
    counted: dict[str, Any], days: int, first: dt.datetime | None, last: dt.datetime | None
) -> FunnelEffect:
    """The funnel moves counted by :func:`_funnel_moves`, with what the attribution engine
    credits the ``email`` channel with for the conversions from the first message's day to
    ``days`` after the last one (nothing when nothing was sent)."""
    conversions: float | None = None
    revenue: float | None = None
    currency = ""
    if first is not None and last is not None:
        result = attribution.attribution(
            attribution.AttributionRequest(
                date_from=timezone.localdate(first),
                date_to=timezone.localdate(last) + dt.timedelta(days=days),
                models=("linear",),
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
        **{k: int(counted.get(k) or 0) for k in ("recipients", "mql", "sql", "customers")},
    )


def funnel_effect(send: Send, days: int = 30) -> FunnelEffect:
    """Recipients of the send who became MQL, SQL or customer within ``days`` of the message
    they were sent (one query), and what the attribution engine credits the ``email`` channel
    with for the conversions in the send's window."""
    counted = Delivery.objects.filter(send=send).aggregate(**_funnel_moves(dt.timedelta(days=days)))
    return _funnel_effect(counted, days, send.started_at, send.started_at)


@dataclass
class TemplateReport:
    """The effect of a template across every send of it."""

    #: sends of it that were started
    sends: int
    first_sent_at: dt.datetime | None
    last_sent_at: dt.datetime | None
    delivered: int
    opened: int
    clicked: int
    unsubscribed: int
    bounced: int
    effect: FunnelEffect

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def template_report(template: EmailTemplate, days: int = 30) -> TemplateReport:
    """What every started send of the template did, in one aggregate over their deliveries:
    delivered, opened, clicked, unsubscribed, bounced, and the recipients who became MQL, SQL
    or customer within ``days`` of their message; plus the ``email`` channel's attributed
    conversions and revenue from the first send's start to ``days`` after the last one's."""
    sends = Send.objects.filter(template=template, started_at__isnull=False).aggregate(
        n=Count("id"), first=Min("started_at"), last=Max("started_at")
    )
    counted = Delivery.objects.filter(send__template=template).aggregate(
        delivered=Count("id", filter=Q(state=DeliveryState.SENT)),
        opened=Count("id", filter=Q(opened_at__isnull=False)),
        clicked=Count("id", filter=Q(clicked_at__isnull=False)),
        unsubscribed=Count("id", filter=Q(unsubscribed_at__isnull=False)),
        bounced=Count("id", filter=Q(state=DeliveryState.BOUNCED)),
        **_funnel_moves(dt.timedelta(days=days)),
    )
    return TemplateReport(
        sends=int(sends["n"] or 0),
        first_sent_at=sends["first"],
        last_sent_at=sends["last"],
        effect=_funnel_effect(counted, days, sends["first"], sends["last"]),
        **{
            k: int(counted[k] or 0)
            for k in ("delivered", "opened", "clicked", "unsubscribed", "bounced")
        },
    )
