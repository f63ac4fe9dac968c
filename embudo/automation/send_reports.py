"""Reads of sends for the CLI, the API and the pages: each send's progress (deliveries by state,
opens, clicks, unsubscribes) in one grouped query, and the report of one send (by link, the
funnel moves of its recipients after it, the conversions and revenue attribution gives e-mail)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Count, Q

from embudo.automation.models import Delivery, DeliveryState, Send


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
