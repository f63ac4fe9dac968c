"""Sales' verdict on an MQL (accepted, rejected or recycled with a reason): it stops the
handoff's clocks, closes it and moves the contact's stage.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from embudo import pipeline
from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.crm import actions as crm
from embudo.crm.models import Contact, LeadStatus, LifecycleStage, TransitionCause
from embudo.errors import ValidationFailed
from embudo.handoff.actions.clocks import _settle, _stop_first_touch
from embudo.handoff.models import Feedback, FeedbackReason, Handoff, SlaState, Verdict


def _reason(raw: Any, verdict: str) -> FeedbackReason:
    query = FeedbackReason.objects.filter(verdict=verdict)
    reason = None
    if isinstance(raw, FeedbackReason):
        reason = raw
    elif isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()):
        reason = query.filter(pk=int(raw)).first()
    elif isinstance(raw, str):
        reason = query.filter(name__iexact=raw.strip()).first()
    known = ", ".join(query.filter(active=True).values_list("name", flat=True))
    if reason is None or reason.verdict != verdict:
        raise ValidationFailed.one(
            "reason", f"{raw!r} is not a reason to choose when {verdict}; choose one of: {known}"
        )
    if not reason.active:
        raise ValidationFailed.one("reason", f"the reason {reason.name!r} is no longer in use")
    return reason


def record_feedback(
    contact: Contact,
    verdict: str,
    *,
    reason: Any = None,
    note: str = "",
    actor: Actor = None,
    at: dt.datetime | None = None,
) -> Feedback:
    """Sales' verdict on an MQL: accept (→ SQL), reject with a reason (→ disqualified, or back
    to nurture as a lead) or recycle with a reason (→ lead, free to become an MQL again)."""
    if verdict not in Verdict.values:
        raise ValidationFailed.one(
            "verdict", f"{verdict!r} is not one of {', '.join(Verdict.values)}"
        )
    stage = contact.lifecycle_stage
    if stage not in (LifecycleStage.MQL, LifecycleStage.SQL):
        raise ValidationFailed.one(
            "contact",
            f"contact {contact.pk} is at stage {stage}; only an MQL or an SQL takes feedback",
        )
    if verdict == Verdict.ACCEPTED and stage == LifecycleStage.SQL:
        raise ValidationFailed.one("verdict", f"contact {contact.pk} is already an SQL")
    chosen: FeedbackReason | None = None
    if verdict == Verdict.ACCEPTED:
        if reason not in (None, ""):
            raise ValidationFailed.one("reason", "an acceptance takes no reason")
    elif reason in (None, ""):
        raise ValidationFailed.one("reason", f"a lead {verdict} needs a reason")
    else:
        chosen = _reason(reason, verdict)
    note = (note or "").strip()
    if len(note) > 500:
        raise ValidationFailed.one("note", "a note has at most 500 characters")
    now = at or timezone.now()
    if verdict == Verdict.ACCEPTED:
        target, status = LifecycleStage.SQL, LeadStatus.QUALIFIED
    elif verdict == Verdict.REJECTED:
        assert chosen is not None
        target = LifecycleStage.DISQUALIFIED if chosen.disqualifies else LifecycleStage.LEAD
        status = LeadStatus.UNQUALIFIED
    else:
        target, status = LifecycleStage.LEAD, LeadStatus.RECYCLED
    with transaction.atomic():
        handoff = Handoff.objects.select_for_update().filter(contact=contact, open=True).first()
        if handoff is not None:
            _stop_first_touch(handoff, now)
            handoff.decided_at = now
            if handoff.decision_state == SlaState.PENDING:
                late = handoff.decision_due is not None and now > handoff.decision_due
                handoff.decision_state = SlaState.BREACHED if late else SlaState.MET
                if late and handoff.breached_at is None:
                    handoff.breached_at = handoff.decision_due
            _settle(handoff)
            handoff.verdict = verdict
            handoff.reason = chosen
            handoff.open = False
            handoff.closed_at = now
            handoff.save()
        label = f"{verdict}: {chosen.name}" if chosen else verdict
        feedback = Feedback.objects.create(
            contact=contact,
            handoff=handoff,
            verdict=verdict,
            reason=chosen,
            note=note,
            from_stage=stage,
            to_stage=target,
            actor=actor if getattr(actor, "is_authenticated", False) else None,
            created_at=now,
        )
        pipeline.feedback_given([feedback.pk])
        crm.update_contact(contact, {"lead_status": status}, actor=actor)
        crm.set_lifecycle_stage(
            contact,
            target,
            cause=TransitionCause.FEEDBACK,
            actor=actor,
            at=now,
            note=f"{label}{' — ' + note if note else ''}",
        )
        record_audit(
            "handoff.feedback",
            "contact",
            contact.pk,
            actor=actor,
            changes={"verdict": verdict, "reason": chosen.name if chosen else "", "note": note},
        )
    return feedback
