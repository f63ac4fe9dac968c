"""Who may be mailed a given kind of e-mail, decided for a whole audience at once.

Sends' minimal version of the consent area's contract (the consent area owns this module): one
query reads every contact's address, whether it is suppressed and its subscription state for
the type; each contact is then either mailable (with its lower-cased address) or refused with
a reason key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Lower

from embudo.automation.models import (
    Subscription,
    SubscriptionStatus,
    SubscriptionType,
    Suppression,
)
from embudo.crm.models import Contact

#: Every reason a contact can be refused, in the order they are checked.
REASONS = (
    "no_address",
    "invalid_address",
    "suppressed",
    "unsubscribed",
    "not_subscribed",
    "pending_confirmation",
)


@dataclass
class Mailability:
    #: contact id → lower-cased address
    mailable: dict[int, str] = field(default_factory=dict)
    #: contact id → reason key (see :data:`REASONS`)
    refused: dict[int, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """How many contacts are refused for each reason, plus ``mailable``."""
        counted = Counter(self.refused.values())
        return {"mailable": len(self.mailable), **{r: counted.get(r, 0) for r in REASONS}}


def _valid(address: str) -> bool:
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True


def mailable(
    contacts: Iterable[int] | QuerySet[Contact], subscription_type: SubscriptionType
) -> Mailability:
    if isinstance(contacts, QuerySet):
        audience = Contact.objects.filter(pk__in=Subquery(contacts.values("pk")))
    else:
        audience = Contact.objects.filter(pk__in=list(contacts))
    status = Subscription.objects.filter(
        contact=OuterRef("pk"), subscription_type=subscription_type
    ).values("status")[:1]
    rows = audience.annotate(
        address=Lower("email"),
        suppressed=Exists(Suppression.objects.filter(email=Lower(OuterRef("email")))),
        status=Subquery(status),
    ).values_list("pk", "address", "suppressed", "status")
    result = Mailability()
    for pk, address, suppressed, state in rows.iterator(chunk_size=5000):
        if not address:
            result.refused[pk] = "no_address"
        elif not _valid(address):
            result.refused[pk] = "invalid_address"
        elif suppressed:
            result.refused[pk] = "suppressed"
        elif state == SubscriptionStatus.UNSUBSCRIBED:
            result.refused[pk] = "unsubscribed"
        elif state == SubscriptionStatus.PENDING:
            result.refused[pk] = "pending_confirmation"
        elif state is None and subscription_type.opt_in_required:
            result.refused[pk] = "not_subscribed"
        else:
            result.mailable[pk] = address
    return result
