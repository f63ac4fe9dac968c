"""Who may be mailed a subscription type's messages, and why each of the others may not.

One set-based query per batch of contacts reads each contact's address, its state for the
type and whether the address is suppressed; the rules below then sort every contact into
``mailable`` (with its address) or ``refused`` (with the first reason that applies):

1. ``no_address`` — the contact has no e-mail address;
2. ``invalid_address`` — the address is not one a mail server accepts;
3. ``unsubscribed`` — the address unsubscribed from all e-mail (a suppression of that reason),
   or the contact unsubscribed from this type;
4. ``suppressed`` — the address bounced hard, kept bouncing soft, complained, or a user put it
   on the suppression list;
5. ``pending_confirmation`` — asked to subscribe, has not confirmed the double opt-in yet;
6. ``not_subscribed`` — the type needs an opt-in and the contact never gave it.

A type that does not need an opt-in mails every contact who did not leave it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL

from embudo.automation.models import (
    Subscription,
    SubscriptionStatus,
    SubscriptionType,
    Suppression,
    SuppressionReason,
)
from embudo.crm.models import Contact

#: The reasons a contact is refused, in the order the rules apply.
REASONS = (
    "no_address",
    "invalid_address",
    "unsubscribed",
    "suppressed",
    "pending_confirmation",
    "not_subscribed",
)
# Ids given as a list are read this many at a time.
_CHUNK = 50_000
_VALID = EmailValidator()


@dataclass
class Mailability:
    """Each contact asked about, either mailable (contact id → lower-cased address) or refused
    (contact id → reason key, one of :data:`REASONS`)."""

    mailable: dict[int, str] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """How many contacts are mailable and how many were refused for each reason (every
        reason is present, 0 when none)."""
        refused = Counter(self.refused.values())
        return {"mailable": len(self.mailable), **{reason: refused[reason] for reason in REASONS}}


def mailable(
    contacts: Iterable[int] | QuerySet[Contact], subscription_type: SubscriptionType
) -> Mailability:
    """Sort ``contacts`` (ids, or a query of contacts) into who may get ``subscription_type``'s
    mail and who may not, and why."""
    result = Mailability()
    if isinstance(contacts, QuerySet):
        _sort(_rows(contacts.order_by(), subscription_type), subscription_type, result)
        return result
    for chunk in _chunks(contacts):
        query = Contact.objects.filter(pk__in=_id_list(chunk)).order_by()
        _sort(_rows(query, subscription_type), subscription_type, result)
    return result


def _id_list(ids: list[int]) -> RawSQL:
    """The ids as one bound parameter: Django prepares an ``IN`` list one value at a time,
    which costs more than the whole query on a list of 100,000 (measured)."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", [ids])
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps([int(i) for i in ids])])


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    iterator = iter(ids)
    while chunk := list(islice(iterator, _CHUNK)):
        yield chunk


def _rows(
    contacts: QuerySet[Contact], subscription_type: SubscriptionType
) -> Iterator[tuple[int, str | None, str | None, str | None]]:
    """(contact id, address, status for the type, suppression reason) per contact."""
    status = Subscription.objects.filter(
        contact_id=OuterRef("pk"), subscription_type=subscription_type
    ).values("status")[:1]
    suppression = Suppression.objects.filter(email=OuterRef("email")).values("reason")[:1]
    query = contacts.annotate(
        _status=Subquery(status), _suppression=Subquery(suppression)
    ).values_list("pk", "email", "_status", "_suppression")
    return query.iterator(chunk_size=5_000)


def _sort(
    rows: Iterable[tuple[int, str | None, str | None, str | None]],
    subscription_type: SubscriptionType,
    result: Mailability,
) -> None:
    # Plain strings, not the TextChoices members: this loop runs once per contact, and the
    # members' comparisons cost more than the rest of it.
    unsubscribed, pending = str(SubscriptionStatus.UNSUBSCRIBED), str(SubscriptionStatus.PENDING)
    unsubscribed_all = str(SuppressionReason.UNSUBSCRIBED)
    opt_in = subscription_type.opt_in_required
    mailable, refused = result.mailable, result.refused
    for contact_id, email, status, suppression in rows:
        if not email:
            refused[contact_id] = "no_address"
        elif not _valid(email):
            refused[contact_id] = "invalid_address"
        elif suppression == unsubscribed_all or status == unsubscribed:
            refused[contact_id] = "unsubscribed"
        elif suppression is not None:
            refused[contact_id] = "suppressed"
        elif status == pending:
            refused[contact_id] = "pending_confirmation"
        elif status is None and opt_in:
            refused[contact_id] = "not_subscribed"
        else:
            mailable[contact_id] = email.lower()


# Addresses of this plain shape pass Django's validator too, so only the others need it (it
# costs ten times more: a quarter of a million-contact run). The same shape the CSV import
# trusts.
_PLAIN = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
    re.IGNORECASE,
)


def _valid(email: str) -> bool:
    if len(email) <= 254 and _PLAIN.fullmatch(email) is not None:
        return True
    try:
        _VALID(email)
    except ValidationError:
        return False
    return True
