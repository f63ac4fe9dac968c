"""Background work for the CRM: telling a sales owner that a contact is now theirs.

Tasks take ids and plain JSON, load fresh state and are safe to run twice (a worker may retry).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks import task

from embudo.accounts.actions import record_audit
from embudo.accounts.models import AuditEntry
from embudo.crm.models import Contact, LeadStatus, LifecycleStage

logger = logging.getLogger(__name__)

OWNER_NOTIFIED = "contact.owner_notified"

# A dead mail server must not hold a worker forever.
SMTP_TIMEOUT_SECONDS = 30


@task()
def notify_owner(contact_id: int, owner_id: int, assigned_at: str) -> dict[str, Any]:
    """Email ``owner_id`` that contact ``contact_id`` was assigned to them at ``assigned_at``.

    One assignment (contact, owner, time) sends at most one mail: the audit entry that records
    the mail is claimed before sending and released if sending fails, so a retry sends it then.
    Returns what happened, for the task result.
    """
    key = {"owner_id": owner_id, "assigned_at": assigned_at}
    with transaction.atomic():
        contact = (
            Contact.objects.select_for_update(of=("self",))
            .select_related("company", "owner")
            .filter(pk=contact_id)
            .first()
        )
        if contact is None:
            return {"sent": False, "reason": f"contact {contact_id} no longer exists"}
        if contact.owner_id != owner_id:
            # Reassigned before this ran: the new owner's own notice is on its way.
            return {"sent": False, "reason": f"contact {contact_id} has another owner now"}
        owner = contact.owner
        if owner is None or not owner.is_active:
            return {"sent": False, "reason": f"user {owner_id} is not active"}
        if not owner.email:
            return {"sent": False, "reason": f"user {owner.get_username()} has no email address"}
        already = AuditEntry.objects.filter(
            action=OWNER_NOTIFIED,
            object_type="contact",
            object_id=str(contact_id),
            changes__owner_id=owner_id,
            changes__assigned_at=assigned_at,
        ).exists()
        if already:
            return {"sent": False, "reason": "the owner was already notified of this assignment"}
        claim = record_audit(
            OWNER_NOTIFIED, "contact", contact_id, changes={**key, "to": owner.email}
        )
        message = _owner_message(contact, owner)
    # Sent outside the transaction: on SQLite a transaction holds the database's write lock,
    # and a slow mail server must not block every other writer meanwhile.
    try:
        message.send()
    except Exception:
        AuditEntry.objects.filter(pk=claim.pk).delete()
        raise
    logger.info("notified %s of contact %s", owner.email, contact_id)
    return {"sent": True, "to": owner.email}


def _owner_message(contact: Contact, owner: Any) -> EmailMessage:
    with translation.override(settings.LANGUAGE_CODE):
        name = str(contact)
        lines = [
            _("Hello %(name)s,") % {"name": owner.first_name or owner.get_username()},
            "",
            _("%(contact)s has been assigned to you in Embudo.") % {"contact": name},
            "",
        ]
        details = [
            (_("Email"), contact.email or ""),
            (_("Job title"), contact.job_title),
            (_("Company"), contact.company.name if contact.company else ""),
            (_("Lifecycle stage"), _label(LifecycleStage, contact.lifecycle_stage)),
            (_("Lead status"), _label(LeadStatus, contact.lead_status)),
            (_("Original source"), contact.original_source),
        ]
        lines += [f"{label}: {value}" for label, value in details if value]
        lines += ["", "— Embudo"]
        subject = _("You now own %(contact)s") % {"contact": name}
    return EmailMessage(
        subject=subject,
        body="\n".join(lines),
        to=[owner.email],
        connection=get_connection(timeout=SMTP_TIMEOUT_SECONDS),
    )


def _label(choices: Any, value: str) -> str:
    return str(choices(value).label) if value in choices.values else value
