"""Reads of captured behaviour for the pages, the timeline, reports and other apps."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlencode

from cachetools import TTLCache, cached
from django.core import signing
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from embudo import caches
from embudo.crm.models import Contact
from embudo.tracking.models import Campaign, Channel, Event, Form, SiteKey, Touchpoint

PIXEL_SALT = "embudo.tracking.pixel"


def contact_events(contact: Contact | int, limit: int = 200) -> QuerySet[Event]:
    """A contact's events, newest first (one query)."""
    contact_id = contact if isinstance(contact, int) else contact.pk
    return Event.objects.filter(contact_id=contact_id).order_by("-occurred_at")[:limit]


def contact_touchpoints(contact: Contact | int, limit: int = 200) -> QuerySet[Touchpoint]:
    """A contact's touchpoints with their campaign, newest first (one query)."""
    contact_id = contact if isinstance(contact, int) else contact.pk
    return (
        Touchpoint.objects.filter(contact_id=contact_id)
        .select_related("campaign")
        .order_by("-occurred_at")[:limit]
    )


def visitor_events(visitor_id: str, limit: int = 200) -> QuerySet[Event]:
    return Event.objects.filter(visitor_id=visitor_id).order_by("-occurred_at")[:limit]


# -- the Sources report --------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcesRequest:
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def last_days(cls, days: int, now: dt.datetime | None = None) -> SourcesRequest:
        end = now or timezone.now()
        return cls(start=end - dt.timedelta(days=days), end=end)


@dataclass(frozen=True)
class ChannelRow:
    channel: str
    label: str
    touchpoints: int
    contacts: int
    visitors: int
    new_contacts: int  # contacts whose first-ever touchpoint falls in the period


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: int
    name: str
    touchpoints: int
    contacts: int


@dataclass(frozen=True)
class SourcesReport:
    request: SourcesRequest
    channels: list[ChannelRow]
    campaigns: list[CampaignRow]

    @property
    def total_touchpoints(self) -> int:
        return sum(row.touchpoints for row in self.channels)


def sources_report(request: SourcesRequest) -> SourcesReport:
    """Touchpoints, contacts and anonymous visitors by channel and by campaign in a period:
    three grouped queries, whatever the volume."""
    in_period = Touchpoint.objects.filter(
        occurred_at__gte=request.start, occurred_at__lt=request.end
    )
    by_channel: dict[str, Mapping[str, Any]] = {
        row["channel"]: row
        for row in in_period.values("channel").annotate(
            touchpoints=Count("id"),
            contacts=Count("contact", distinct=True),
            visitors=Count("visitor_id", distinct=True, filter=Q(contact__isnull=True)),
        )
    }
    # A contact is "new" through a channel when its first touchpoint ever came through it in
    # this period: the same first touch that sets the contact's original source.
    earlier = Touchpoint.objects.filter(
        contact=OuterRef("contact"), occurred_at__lt=OuterRef("occurred_at")
    )
    new_counts = {
        row["channel"]: row["n"]
        for row in in_period.filter(contact__isnull=False)
        .filter(~Exists(earlier))
        .values("channel")
        .annotate(n=Count("contact", distinct=True))
    }
    channels = [
        ChannelRow(
            channel=value,
            label=str(label),
            touchpoints=by_channel.get(value, {}).get("touchpoints", 0),
            contacts=by_channel.get(value, {}).get("contacts", 0),
            visitors=by_channel.get(value, {}).get("visitors", 0),
            new_contacts=new_counts.get(value, 0),
        )
        for value, label in Channel.choices
    ]
    channels.sort(key=lambda row: -row.touchpoints)
    campaigns = [
        CampaignRow(
            campaign_id=row["campaign"],
            name=row["campaign__name"],
            touchpoints=row["touchpoints"],
            contacts=row["contacts"],
        )
        for row in in_period.filter(campaign__isnull=False)
        .values("campaign", "campaign__name")
        .annotate(touchpoints=Count("id"), contacts=Count("contact", distinct=True))
        .order_by("-touchpoints", "campaign__name")
    ]
    return SourcesReport(request=request, channels=channels, campaigns=campaigns)


# -- public capture settings ---------------------------------------------------------------------


# The public endpoints look a site key up on every beacon, and keys change rarely: each process
# keeps what it read for SITE_KEY_TTL seconds (a change made by another process reaches it within
# that), and forgets at once the keys it changes itself (see forget_site_keys).
SITE_KEY_TTL = 10.0
SITE_KEYS_KEPT = 1000


def live_site_key(key: str) -> SiteKey | None:
    """The unrevoked site key with this public key, or None."""
    if not key or len(key) > 64:
        return None
    return _live_site_key(key)


@cached(TTLCache(maxsize=SITE_KEYS_KEPT, ttl=SITE_KEY_TTL), lock=threading.Lock())
def _live_site_key(key: str) -> SiteKey | None:
    return SiteKey.objects.filter(key=key, revoked_at__isnull=True).first()


def forget_site_keys() -> None:
    """Drop the site keys this process keeps, after it changed one."""
    _live_site_key.cache_clear()


caches.register("tracking.site_keys", forget_site_keys)


def active_form(slug: str) -> Form | None:
    return Form.objects.filter(slug=slug, is_active=True).first()


def site_keys() -> QuerySet[SiteKey]:
    return SiteKey.objects.order_by("-revoked_at", "name")


def forms() -> QuerySet[Form]:
    return Form.objects.order_by("name", "id")


def form_submission_counts() -> dict[str, int]:
    """Submissions per form slug (one grouped query over form_submit events)."""
    rows = (
        Event.objects.filter(type="form_submit")
        .values("properties__form")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["properties__form"]: row["n"] for row in rows if row["properties__form"]}


def campaigns() -> QuerySet[Campaign]:
    return Campaign.objects.order_by("name")


# -- embed codes ---------------------------------------------------------------------------------


def snippet_code(site_key: SiteKey, base_url: str) -> str:
    """The ``<script>`` tag marketing pastes into every page of their site."""
    return (
        f'<script async src="{escape(base_url)}/t.js" '
        f'data-site-key="{escape(site_key.key)}"></script>'
    )


def form_embed_code(form: Form, base_url: str) -> str:
    """Plain HTML for the form: it posts to Embudo by itself, and when the tracking snippet is
    on the page it is sent in the background and linked to the visitor's earlier visits."""
    lines = [
        f'<form method="post" action="{escape(base_url)}/f/{escape(form.slug)}" '
        f'data-embudo-form="{escape(form.slug)}">'
    ]
    for spec in form.fields:
        name = escape(spec["name"])
        label = escape(spec["label"])
        required = " required" if spec["required"] else ""
        if spec["type"] == "textarea":
            control = f'<textarea name="{name}"{required}></textarea>'
        elif spec["type"] == "select":
            options = "".join(
                f'<option value="{escape(c)}">{escape(c)}</option>' for c in spec["choices"]
            )
            control = (
                f'<select name="{name}"{required}><option value=""></option>{options}</select>'
            )
        elif spec["type"] == "checkbox":
            control = f'<input type="checkbox" name="{name}" value="yes"{required}>'
        else:
            control = f'<input type="{escape(spec["type"])}" name="{name}"{required}>'
        lines.append(f"  <label>{label} {control}</label>")
    if form.consent_text:
        required = " required" if form.consent_required else ""
        lines.append(
            f'  <label><input type="checkbox" name="_consent" value="yes"{required}> '
            f"{escape(form.consent_text)}</label>"
        )
    # A field people never see: bots fill it in, and those submissions are dropped.
    lines.append(
        '  <input type="text" name="_hp" value="" tabindex="-1" autocomplete="off" '
        'style="position:absolute;left:-10000px" aria-hidden="true">'
    )
    lines.append('  <button type="submit">Send</button>')
    lines.append("  <p data-embudo-message></p>")
    lines.append("</form>")
    return "\n".join(lines)


def pixel_path(contact_id: int, event_type: str = "email_open", **properties: Any) -> str:
    """A ``/t.gif`` path that records ``event_type`` on the contact when loaded (e-mails).

    The contact is carried in a signed token, so nobody can forge events for other contacts.
    """
    token = signing.dumps({"c": contact_id, "e": event_type, "p": properties}, salt=PIXEL_SALT)
    return "/t.gif?" + urlencode({"t": token})


def read_pixel_token(token: str) -> dict[str, Any] | None:
    try:
        value = signing.loads(token, salt=PIXEL_SALT)
    except signing.BadSignature:
        return None
    return value if isinstance(value, dict) else None
