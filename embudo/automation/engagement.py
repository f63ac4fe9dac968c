"""What a contact did with a message: opened it (the pixel was fetched) or clicked one of its
links. Each is stamped on the delivery (``opened_at``, ``clicked_at``, first time only) and
recorded as an ``email_open`` / ``email_click`` event through the capture path every event takes
(:func:`embudo.tracking.actions.record_events`), so scoring, segments, the timeline and
attribution's ``email`` channel see it.

Mail servers' link scanners and security gateways fetch links and images before anyone reads
the message; counting those would score and attribute robots. A hit that looks like one — a bot's
user agent, a HEAD request, a click within seconds of the message being sent — is recorded as an
``email_bot_open`` / ``email_bot_click`` event that says why (``properties.bot``): kept, but no
engagement rule, segment or report counts it, and the delivery is not stamped.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.utils import timezone

from embudo.automation import rendering
from embudo.automation.models import Delivery
from embudo.tracking.actions import record_events

OPEN = "email_open"
CLICK = "email_click"
BOT_OPEN = "email_bot_open"
BOT_CLICK = "email_bot_click"

#: A click this soon after the message left is a scanner's: nobody reads and clicks that fast.
SCANNER_WINDOW = dt.timedelta(seconds=10)

# User agents of crawlers, link scanners and security gateways (lower case, searched).
BOT_AGENTS = re.compile(
    r"bot\b|bot/|crawler|spider|slurp|scanner|preview|headless|phantomjs|python-|"
    r"curl/|wget/|go-http-client|java/|okhttp|libwww|httpclient|axios/|node-fetch|"
    r"barracuda|mimecast|proofpoint|symantec|messagelabs|forcepoint|sophos|trendmicro|"
    r"fireeye|ironport|cisco|safelinks|safe links|microsoft office protection|"
    r"appengine-google|google-safety|virustotal|urlscan|zscaler|checkpoint|paloalto"
)

# Namespaces of the event ids: one open per delivery, one click per delivery and link, so a
# reload or a second click records nothing new (record_events is idempotent on event_id).
_OPEN_IDS = uuid.UUID("6f1f6f0e-1c8e-4c43-9a4e-3d1f1f0a0e01")
_CLICK_IDS = uuid.UUID("6f1f6f0e-1c8e-4c43-9a4e-3d1f1f0a0e02")


@dataclass(frozen=True)
class Hit:
    """An HTTP request for a tracked link: who asked and how."""

    method: str = "GET"
    user_agent: str = ""
    ip_address: str = ""


def bot_reason(hit: Hit, delivery: Delivery, now: dt.datetime, *, click: bool) -> str:
    """Why this hit is a machine's (``""``: it is a person's, as far as anyone can tell)."""
    if hit.method == "HEAD":
        return "head_request"
    agent = hit.user_agent.strip().lower()
    if not agent:
        return "no_user_agent"
    if BOT_AGENTS.search(agent):
        return "user_agent"
    if click and delivery.sent_at is not None and now - delivery.sent_at < SCANNER_WINDOW:
        return "too_soon"
    return ""


def _properties(delivery: Delivery, **more: Any) -> dict[str, Any]:
    version = delivery.version
    return {
        "delivery": delivery.pk,
        "send": delivery.send_id,
        "template": version.template_id,
        "version": version.number,
        **more,
    }


def _open_event(delivery: Delivery, now: dt.datetime, reason: str) -> dict[str, Any]:
    event_id = uuid.uuid5(_OPEN_IDS, f"{delivery.pk}{'.bot' if reason else ''}")
    properties = _properties(delivery, **({"bot": reason} if reason else {}))
    return {
        "event_id": str(event_id),
        "type": BOT_OPEN if reason else OPEN,
        "contact_id": delivery.contact_id,
        "occurred_at": now.isoformat(),
        "properties": properties,
    }


def record_open(delivery: Delivery, hit: Hit, *, now: dt.datetime | None = None) -> bool:
    """Record that the delivery's message was opened; True if it counted as a person's open
    (a bot's is recorded, flagged, and does not count)."""
    now = now or timezone.now()
    reason = bot_reason(hit, delivery, now, click=False)
    if not reason:
        Delivery.objects.filter(pk=delivery.pk, opened_at__isnull=True).update(opened_at=now)
    if delivery.contact_id is not None:
        record_events([_open_event(delivery, now, reason)], source="pixel")
    return not reason


def _utm(url: str, delivery: Delivery) -> dict[str, str]:
    """The UTM fields of the click event: the link's own, and where it has none, the e-mail
    channel's (``utm_medium=email``), so attribution credits e-mail for the visit."""
    query = parse_qs(urlsplit(url).query)
    fields = {
        name: (query.get(name) or [""])[0][:255]
        for name in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
    }
    if not fields["utm_medium"]:
        fields["utm_medium"] = "email"
    if not fields["utm_source"]:
        fields["utm_source"] = "embudo"
    if not fields["utm_campaign"]:
        fields["utm_campaign"] = delivery.version.template.name[:255]
    return fields


def click_destination(delivery: Delivery, link: int) -> str:
    """Where the ``link``-th link of the message this delivery sent leads (``""``: no such
    link, or one that is not a web address, which is never redirected to)."""
    url = rendering.link_destination(delivery.version, delivery.language, link, delivery.contact)
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:  # not a web address at all ("https://[oops"): nowhere to send anyone
        return ""
    return url if scheme in ("http", "https") else ""


def record_click(
    delivery: Delivery, link: int, url: str, hit: Hit, *, now: dt.datetime | None = None
) -> bool:
    """Record a click on the ``link``-th link, which leads to ``url``; True if it counted as a
    person's click. A person's click also counts as an open (images may be blocked)."""
    now = now or timezone.now()
    reason = bot_reason(hit, delivery, now, click=True)
    events: list[dict[str, Any]] = []
    if reason:
        events.append(
            {
                "event_id": str(uuid.uuid5(_CLICK_IDS, f"{delivery.pk}.{link}.bot")),
                "type": BOT_CLICK,
                "contact_id": delivery.contact_id,
                "occurred_at": now.isoformat(),
                "properties": _properties(delivery, link=link, url=url, bot=reason),
            }
        )
    else:
        Delivery.objects.filter(pk=delivery.pk, clicked_at__isnull=True).update(clicked_at=now)
        Delivery.objects.filter(pk=delivery.pk, opened_at__isnull=True).update(opened_at=now)
        events.append(_open_event(delivery, now, ""))
        events.append(
            {
                "event_id": str(uuid.uuid5(_CLICK_IDS, f"{delivery.pk}.{link}")),
                "type": CLICK,
                "contact_id": delivery.contact_id,
                "occurred_at": now.isoformat(),
                "url": url[:2048],
                "properties": _properties(delivery, link=link),
                **_utm(url, delivery),
            }
        )
    if delivery.contact_id is not None:
        record_events(events, source="pixel")
    return not reason
