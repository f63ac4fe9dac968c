"""Background work of the handoff app: an SLA deadline waking up, and notices mailed.

Both take ids, load fresh state and are safe to run twice (a worker may retry).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.mail import EmailMessage, get_connection
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_tasks import task

from embudo.handoff import actions
from embudo.handoff.models import Notification

logger = logging.getLogger(__name__)

# A dead mail server must not hold a worker forever.
SMTP_TIMEOUT_SECONDS = 30


@task()
def check_deadline(handoff_ids: list[int], clock: str) -> dict[str, Any]:
    """Runs at a deadline (``run_after``): breach the clocks still running; a handoff whose
    clock stopped meanwhile (touched, decided, reassigned) is left alone."""
    breached = actions.breach_due(handoff_ids, clock)
    return {"clock": clock, "checked": len(handoff_ids), "breached": breached}


@task()
def mail_notifications(notification_ids: list[int]) -> dict[str, Any]:
    """E-mail each recipient their new notices, one message per person. A notice is claimed
    (``emailed_at``) before sending and released if sending fails, so a retry mails it then
    and a second run mails nothing."""
    now = timezone.now()
    claimable = Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True)
    rows = list(claimable.values_list("pk", "user_id", "message"))
    if not rows:
        return {"sent": 0}
    claimed = Notification.objects.filter(pk__in=[r[0] for r in rows], emailed_at__isnull=True)
    claimed.update(emailed_at=now)
    by_user: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for pk, user_id, message in rows:
        by_user[user_id].append((pk, message))
    users = get_user_model().objects.in_bulk(list(by_user))
    sent = 0
    for user_id, notices in by_user.items():
        user = users.get(user_id)
        if user is None or not user.is_active or not user.email:
            continue
        try:
            _message(user, [m for _pk, m in notices]).send()
        except Exception:
            Notification.objects.filter(pk__in=[pk for pk, _m in notices]).update(emailed_at=None)
            raise
        sent += 1
        logger.info("mailed %s notice(s) to %s", len(notices), user.email)
    return {"sent": sent}


def _message(user: User, notices: list[str]) -> EmailMessage:
    with translation.override(settings.LANGUAGE_CODE):
        subject = (
            notices[0]
            if len(notices) == 1
            else _("%(n)s notices from Embudo's lead handoff") % {"n": len(notices)}
        )
        lines = [_("Hello %(name)s,") % {"name": user.first_name or user.get_username()}, ""]
        lines += [f"• {notice}" for notice in notices]
        lines += ["", _("Open your lead inbox in Embudo to act on them."), "", "— Embudo"]
    return EmailMessage(
        subject=subject[:200],
        body="\n".join(lines),
        to=[user.email],
        connection=get_connection(timeout=SMTP_TIMEOUT_SECONDS),
    )
