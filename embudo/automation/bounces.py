"""Bounces and complaints: what comes back after a message left, and what Embudo does about it.

- a hard bounce suppresses the address at once;
- a soft bounce is counted, and the address is suppressed after ``EMBUDO_SOFT_BOUNCE_LIMIT`` of
  its deliveries in a row bounced soft;
- a complaint ("this is spam") suppresses the address and unsubscribes its contact from all.

They arrive three ways, all ending in :func:`record_bounce`: a bounce message (a DSN) mailed to
a delivery's VERP return path and received by ``embudo mail-in`` (:func:`read_bounce_message`,
parsed with flufl.bounce); a provider's webhook through django-anymail's tracking signal
(:func:`anymail_tracking`); or a call naming the delivery or the address.
"""

from __future__ import annotations

import email
import logging
from dataclasses import dataclass
from email.message import Message
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from embudo.automation import consent, links
from embudo.automation.models import (
    Bounce,
    BounceKind,
    ConsentSource,
    Delivery,
    DeliveryState,
    SuppressionReason,
)
from embudo.crm.models import Contact
from embudo.errors import EmbudoError

logger = logging.getLogger(__name__)


class BounceError(EmbudoError):
    """A bounce Embudo cannot act on (unknown delivery, bad kind, no address)."""


@dataclass(frozen=True)
class BounceOutcome:
    email: str
    kind: str
    delivery_id: int | None
    #: the address went on the suppression list because of this bounce
    suppressed: bool
    #: the same bounce was already recorded (a DSN delivered twice): nothing changed
    duplicate: bool = False


def record_bounce(target: int | str, kind: str, detail: str = "") -> BounceOutcome:
    """Record a bounce or complaint for a delivery (its id) or an address, and suppress the
    address when the rules say so."""
    if kind not in BounceKind.values:
        raise BounceError(f"{kind!r} is not a bounce kind ({', '.join(BounceKind.values)})")
    # The detail is what a remote mail server or provider wrote: a NUL byte in it is dropped
    # (no database stores one), never a reason to lose the bounce.
    detail = (detail or "").replace("\x00", "").strip()[:500]
    with transaction.atomic():
        delivery: Delivery | None = None
        if isinstance(target, int):
            delivery = (
                Delivery.objects.select_for_update(of=("self",))
                .select_related("contact")
                .filter(pk=target)
                .first()
            )
            if delivery is None:
                raise BounceError(f"no delivery with id {target}")
            address = delivery.email.lower()
            if Bounce.objects.filter(delivery=delivery, kind=kind).exists():
                return BounceOutcome(address, kind, delivery.pk, False, duplicate=True)
        else:
            address = (target or "").strip().lower()
            if "@" not in address:
                raise BounceError(f"{target!r} is not an e-mail address")
        Bounce.objects.create(email=address, delivery=delivery, kind=kind, detail=detail)
        if delivery is not None and kind != BounceKind.COMPLAINT:
            Delivery.objects.filter(pk=delivery.pk).update(
                state=DeliveryState.BOUNCED,
                bounced_at=delivery.bounced_at or timezone.now(),
                error=detail or delivery.error,
            )
        suppressed = False
        if kind == BounceKind.HARD:
            _row, suppressed = consent.suppress(
                address, SuppressionReason.HARD_BOUNCE, detail=detail
            )
        elif kind == BounceKind.SOFT and _soft_streak(address, delivery):
            _row, suppressed = consent.suppress(
                address, SuppressionReason.SOFT_BOUNCES, detail=detail
            )
        elif kind == BounceKind.COMPLAINT:
            _row, suppressed = consent.suppress(address, SuppressionReason.COMPLAINT, detail=detail)
            _unsubscribe_complainer(address, delivery, detail)
    return BounceOutcome(address, kind, delivery.pk if delivery else None, suppressed)


def _soft_streak(address: str, delivery: Delivery | None) -> bool:
    """Whether the address's last ``EMBUDO_SOFT_BOUNCE_LIMIT`` messages all bounced soft: its
    latest deliveries that reached the mail server, or (for a bounce that names no delivery)
    its latest bounces. A message that got through since breaks the streak."""
    limit = settings.EMBUDO_SOFT_BOUNCE_LIMIT
    if delivery is not None and delivery.contact_id is not None:
        soft = Bounce.objects.filter(delivery=OuterRef("pk"), kind=BounceKind.SOFT)
        latest = list(
            Delivery.objects.filter(contact_id=delivery.contact_id, email__iexact=address)
            .filter(state__in=(DeliveryState.SENT, DeliveryState.BOUNCED))
            .annotate(soft=Exists(soft))
            .order_by("-created_at", "-id")
            .values_list("soft", flat=True)[:limit]
        )
    else:
        latest = [
            kind == BounceKind.SOFT
            for kind in Bounce.objects.filter(email=address)
            .order_by("-created_at", "-id")
            .values_list("kind", flat=True)[:limit]
        ]
    return len(latest) >= limit and all(latest)


def _unsubscribe_complainer(address: str, delivery: Delivery | None, detail: str) -> None:
    contacts = (
        [delivery.contact]
        if delivery is not None and delivery.contact is not None
        else list(Contact.objects.filter(email=address))
    )
    for contact in contacts:
        consent.unsubscribe(
            contact,
            None,
            source=ConsentSource.COMPLAINT,
            text=detail,
            delivery=delivery,
        )


# -- bounce messages (DSNs) --------------------------------------------------------------------


@dataclass(frozen=True)
class ReadBounce:
    """What one bounce message says about the delivery its return path names."""

    delivery_id: int
    kind: str
    detail: str


def read_bounce_message(raw: bytes, recipients: list[str]) -> list[ReadBounce]:
    """What a bounce message mailed to our return paths (``recipients``, the SMTP envelope's)
    reports: a complaint (an ARF feedback report), a permanent failure (hard) or a temporary one
    (soft). A message that reports neither (an auto-reply) reports nothing. Recipients that are
    not our signed return paths are ignored, so nobody can bounce someone else's address."""
    from flufl.bounce import all_failures

    message = email.message_from_bytes(raw)
    deliveries: list[int] = []
    for recipient in recipients:
        try:
            deliveries.append(links.read_return_path(recipient))
        except links.BadLink:
            logger.warning("bounce for %s ignored: not an Embudo return path", recipient)
    if not deliveries:
        return []
    if _is_complaint(message):
        kind, detail = BounceKind.COMPLAINT, _feedback_detail(message)
    else:
        try:
            temporary, permanent = all_failures(message)
        except Exception:  # flufl.bounce's detectors fail on some malformed messages
            logger.warning("bounce message not readable: %s", message.get("Subject", ""))
            return []
        if permanent:
            kind = BounceKind.HARD
        elif temporary:
            kind = BounceKind.SOFT
        else:
            return []
        detail = _dsn_detail(message) or str(message.get("Subject", ""))
    return [ReadBounce(delivery, kind, detail[:500]) for delivery in deliveries]


def _is_complaint(message: Message) -> bool:
    return (
        message.get_content_type() == "multipart/report"
        and str(message.get_param("report-type") or "").lower() == "feedback-report"
    )


def _feedback_detail(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return f"complaint: {payload[0].get('Feedback-Type', 'abuse')}"
    return "complaint"


def _dsn_detail(message: Message) -> str:
    """The first recipient's status and diagnostic from the DSN's machine-readable part."""
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            if isinstance(blocks, list):
                for block in blocks[1:]:
                    if not isinstance(block, Message):
                        continue
                    status = block.get("Status", "")
                    diagnostic = block.get("Diagnostic-Code", "")
                    if status or diagnostic:
                        return " ".join(f"{status} {diagnostic}".split())
    return ""


def process_bounce_message(raw: bytes, recipients: list[str]) -> list[BounceOutcome]:
    """Read a bounce message and record what it reports; a delivery that no longer exists is
    logged and skipped (the message is still taken, or the mail server would keep retrying)."""
    outcomes: list[BounceOutcome] = []
    for found in read_bounce_message(raw, recipients):
        try:
            outcomes.append(record_bounce(found.delivery_id, found.kind, found.detail))
        except BounceError as error:
            logger.warning("bounce not recorded: %s", error)
    return outcomes


# -- provider webhooks (django-anymail) -------------------------------------------------------


def anymail_tracking(sender: Any, event: Any, esp_name: str, **_: Any) -> None:
    """django-anymail's tracking signal: a provider reported a bounce, deferral or complaint.
    The delivery is found by the ``embudo_delivery`` metadata the message carried, else by its
    Message-ID, else the address alone is recorded."""
    kinds = {"bounced": BounceKind.HARD, "deferred": BounceKind.SOFT}
    kinds["complained"] = BounceKind.COMPLAINT
    kind = kinds.get(event.event_type)
    if kind is None:
        return
    detail = f"{esp_name}: {event.description or event.mta_response or event.event_type}"
    target: int | str | None = None
    metadata = event.metadata or {}
    raw_id = str(metadata.get("embudo_delivery", ""))
    if raw_id.isdigit():
        target = int(raw_id)
    elif event.message_id:
        target = (
            Delivery.objects.filter(message_id=event.message_id)
            .values_list("pk", flat=True)
            .first()
        )
    if target is None:
        target = event.recipient or ""
    try:
        record_bounce(target, kind, detail)
    except BounceError as error:
        logger.warning("%s webhook event not recorded: %s", esp_name, error)
