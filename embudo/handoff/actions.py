"""Every write of the handoff app: hand MQLs to sales with their SLA clocks, stop or breach the
clocks, record sales' feedback, reassign, and keep the settings marketing and sales agree on.

Actions own their transaction, the audit entry and the after-commit work (mail, deadline tasks).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from embudo import pipeline
from embudo.accounts.actions import record_audit
from embudo.accounts.roles import ADMIN, SALES, SALES_MANAGER, role_of
from embudo.crm import actions as crm
from embudo.crm.models import Contact, LeadStatus, LifecycleStage, TransitionCause
from embudo.errors import ValidationFailed
from embudo.handoff import assignment
from embudo.handoff.business_time import (
    BusinessTimeError,
    WorkingWeek,
    add_business_minutes,
)
from embudo.handoff.models import (
    AssignmentRule,
    BusinessHours,
    Feedback,
    FeedbackReason,
    Handoff,
    Holiday,
    MarketingCommitment,
    Notification,
    RepAvailability,
    SlaPolicy,
    SlaState,
    TeamRouting,
    Verdict,
)

FIRST_TOUCH = "first_touch"
DECISION = "decision"
CLOCKS = (FIRST_TOUCH, DECISION)

# Lead statuses that mean the rep has reached out: the first touch.
TOUCHED_STATUSES = (LeadStatus.ATTEMPTING, LeadStatus.CONNECTED, LeadStatus.QUALIFIED)
# Activities that count as a first touch (a note or a task does not).
TOUCH_KINDS = ("call", "email", "meeting")


# -- handing off ---------------------------------------------------------------------------------


def week_of(hours: BusinessHours) -> WorkingWeek:
    return WorkingWeek.of(
        hours.time_zone,
        hours.weekdays,
        hours.opens_at,
        hours.closes_at,
        hours.holidays.values_list("date", flat=True),
    )


def _tiers(contact_ids: Sequence[int], now: dt.datetime) -> dict[int, SlaPolicy]:
    """Each contact's SLA policy: the first active one (by position) whose tier matches."""
    remaining = list(contact_ids)
    chosen: dict[int, SlaPolicy] = {}
    for policy in SlaPolicy.objects.filter(active=True).select_related("business_hours"):
        if not remaining:
            break
        matched = assignment.matching(remaining, policy.condition, (), now)
        for contact_id in matched:
            chosen[contact_id] = policy
        remaining = [c for c in remaining if c not in matched]
    return chosen


def _deadlines(policy: SlaPolicy, start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    week = week_of(policy.business_hours)
    return (
        add_business_minutes(start, policy.first_touch_minutes, week),
        add_business_minutes(start, policy.decision_minutes, week),
    )


def hand_off(
    contact_ids: Iterable[int],
    *,
    at: dt.datetime | None = None,
    actor: Any = None,
    exclude_owner: Mapping[int, int] | None = None,
) -> list[Handoff]:
    """Give each MQL among ``contact_ids`` without an open handoff to a rep (or the fallback
    queue), start its SLA clocks, and tell the owners (or the managers, for the queue).

    Set-based: thousands of MQLs at once cost a few queries per rule, policy and owner.
    """
    now = at or timezone.now()
    wanted = sorted(set(contact_ids))
    with transaction.atomic():
        rows = list(
            Contact.objects.filter(pk__in=wanted, lifecycle_stage=LifecycleStage.MQL)
            .exclude(pk__in=Handoff.objects.filter(open=True).values("contact_id"))
            .order_by("pk")
            .values_list("pk", "original_source", "original_campaign", "owner_id")
        )
        if not rows:
            return []
        ids = [r[0] for r in rows]
        excluded = dict(exclude_owner or {})
        routes = assignment.route(ids, now, exclude_owner=excluded)
        # A contact no rule routes keeps the rep who already owns it, if any.
        sellers = set(
            get_user_model()
            .objects.filter(
                pk__in={r[3] for r in rows if r[3]},
                is_active=True,
                groups__name__in=[SALES, SALES_MANAGER, ADMIN],
            )
            .values_list("pk", flat=True)
        )
        for contact_id, _source, _campaign, owner_id in rows:
            route = routes[contact_id]
            if (
                route.rule_id is None
                and owner_id in sellers
                and excluded.get(contact_id) != owner_id
            ):
                routes[contact_id] = assignment.Route(None, owner_id, None, "kept its owner")
        policies = _tiers(ids, now)
        due: dict[int, tuple[dt.datetime, dt.datetime]] = {}
        for tier in {p.pk: p for p in policies.values()}.values():
            due[tier.pk] = _deadlines(tier, now)
        facts = tier_facts(ids)
        handoffs = []
        for contact_id, source, campaign, _owner in rows:
            route = routes[contact_id]
            policy = policies.get(contact_id)
            first_due, decision_due = due[policy.pk] if policy else (None, None)
            persona, band, score = facts.get(contact_id, ("", "", None))
            handoffs.append(
                Handoff(
                    contact_id=contact_id,
                    handed_off_at=now,
                    team_id=route.team_id,
                    owner_id=route.owner_id,
                    rule_id=route.rule_id,
                    policy=policy,
                    routing_note=route.note[:255],
                    source=source[:128],
                    campaign=campaign[:255],
                    persona=persona[:128],
                    score_band=band[:32],
                    score=score,
                    first_touch_due=first_due,
                    decision_due=decision_due,
                )
            )
        Handoff.objects.bulk_create(handoffs, batch_size=2_000)
        if len(handoffs) and handoffs[0].pk is None:  # a backend that returns no ids
            handoffs = list(
                Handoff.objects.filter(open=True, contact_id__in=ids, handed_off_at=now)
            )
        # A queued lead has no owner: the queue is where the managers pick it up.
        owners = {h.contact_id: h.owner_id for h in handoffs}
        crm.assign_owners(owners, lead_status=LeadStatus.NEW, actor=actor)
        queued = sum(1 for h in handoffs if h.owner_id is None)
        record_audit(
            "handoff.create",
            "handoff",
            actor=actor,
            changes={"contacts": len(handoffs), "queued": queued},
        )
        _tell_owners(handoffs, now)
        _tell_queue(handoffs, now)
        _schedule(handoffs)
    return handoffs


def tier_facts(contact_ids: Sequence[int]) -> dict[int, tuple[str, str, float | None]]:
    """Each contact's persona, score band and score (the first enabled scoring model's) at
    handoff, kept on the handoff for the inbox's order and the reports' breakdowns."""
    from embudo.scoring import queries as scoring_queries
    from embudo.segments.queries import persona_names

    personas = persona_names(contact_ids)
    facts: dict[int, tuple[str, str, float | None]] = {}
    models_ = list(scoring_queries.scoring_models().filter(enabled=True)[:1])
    scores = scoring_queries.scores_for(contact_ids, models=models_) if models_ else {}
    for contact_id in contact_ids:
        mine = scores.get(contact_id)
        score = mine[0] if mine else None
        facts[contact_id] = (
            personas.get(contact_id, ""),
            score.band if score else "",
            round(score.total, 2) if score else None,
        )
    return facts


def _schedule(handoffs: Sequence[Handoff]) -> None:
    """One delayed task per clock and deadline (a bulk handoff shares a handful of deadlines)."""
    groups: dict[tuple[str, dt.datetime], list[int]] = defaultdict(list)
    for handoff in handoffs:
        if handoff.first_touch_due and handoff.first_touch_state == SlaState.PENDING:
            groups[(FIRST_TOUCH, handoff.first_touch_due)].append(handoff.pk)
        if handoff.decision_due and handoff.decision_state == SlaState.PENDING:
            groups[(DECISION, handoff.decision_due)].append(handoff.pk)
    if not groups:
        return
    from embudo.handoff.tasks import check_deadline  # here: importing a task sets up the backend

    for (clock, due), ids in groups.items():
        transaction.on_commit(
            partial(_enqueue_deadline, check_deadline, ids, clock, due), robust=True
        )


def _enqueue_deadline(task: Any, ids: list[int], clock: str, due: dt.datetime) -> None:
    task.using(run_after=due).enqueue(ids, clock)


def _notify(
    user_ids: Iterable[int],
    kind: str,
    message: str,
    *,
    contact_id: int | None = None,
    handoff_id: int | None = None,
    now: dt.datetime | None = None,
) -> list[Notification]:
    rows = [
        Notification(
            user_id=user_id,
            kind=kind,
            message=message[:500],
            contact_id=contact_id,
            handoff_id=handoff_id,
            created_at=now or timezone.now(),
        )
        for user_id in sorted(set(user_ids))
    ]
    Notification.objects.bulk_create(rows)
    ids = [n.pk for n in rows if n.pk is not None]
    if ids:
        from embudo.handoff.tasks import mail_notifications

        transaction.on_commit(partial(mail_notifications.enqueue, ids), robust=True)
    return rows


def _tell_owners(handoffs: Sequence[Handoff], now: dt.datetime) -> None:
    by_owner: dict[int, list[Handoff]] = defaultdict(list)
    for handoff in handoffs:
        if handoff.owner_id is not None:
            by_owner[handoff.owner_id].append(handoff)
    names = dict(
        Contact.objects.filter(
            pk__in=[h[0].contact_id for h in by_owner.values() if len(h) == 1]
        ).values_list("pk", "email")
    )
    for owner_id, theirs in by_owner.items():
        if len(theirs) == 1:
            handoff = theirs[0]
            due = handoff.first_touch_due
            lead = names.get(handoff.contact_id) or handoff.contact_id
            message = (
                _say(gettext_noop("New MQL for you: %(lead)s; first touch due %(due)s UTC"))
                % {"lead": lead, "due": f"{due:%Y-%m-%d %H:%M}"}
                if due
                else _say(gettext_noop("New MQL for you: %(lead)s")) % {"lead": lead}
            )
            _notify(
                [owner_id],
                "assigned",
                message,
                contact_id=handoff.contact_id,
                handoff_id=handoff.pk,
                now=now,
            )
        else:
            message = _say(gettext_noop("%(n)s new MQLs for you")) % {"n": len(theirs)}
            _notify([owner_id], "assigned", message, now=now)


def _tell_queue(handoffs: Sequence[Handoff], now: dt.datetime) -> None:
    """Leads nobody could take go to the fallback queue, and the managers hear of it."""
    queued = [h for h in handoffs if h.owner_id is None]
    if not queued:
        return
    reasons = sorted({h.routing_note for h in queued})
    message = _say(gettext_noop("%(n)s MQL(s) wait in the fallback queue: %(why)s")) % {
        "n": len(queued),
        "why": "; ".join(reasons),
    }
    first = queued[0] if len(queued) == 1 else None
    _notify(
        managers_of(None, None),
        "queued",
        message,
        contact_id=first.contact_id if first else None,
        handoff_id=first.pk if first else None,
        now=now,
    )


def _say(message: str) -> str:
    """A notice's words in the site's language (notices are stored, then read and mailed)."""
    with translation.override(settings.LANGUAGE_CODE):
        return gettext(message)


def managers_of(owner_id: int | None, team_id: int | None) -> list[int]:
    """Who hears of a breach or a queued lead: the team's manager, else its sales managers,
    else every sales manager, else the admins."""
    users = get_user_model().objects.filter(is_active=True)
    if team_id is None and owner_id is not None:
        team_id = (
            get_user_model()
            .objects.filter(pk=owner_id)
            .values_list("sales_team_membership__team_id", flat=True)
            .first()
        )
    if team_id is not None:
        routing = TeamRouting.objects.filter(team_id=team_id, manager__is_active=True).first()
        if routing and routing.manager_id:
            return [routing.manager_id]
        in_team = list(
            users.filter(
                sales_team_membership__team_id=team_id, groups__name=SALES_MANAGER
            ).values_list("pk", flat=True)
        )
        if in_team:
            return in_team
    managers = list(users.filter(groups__name=SALES_MANAGER).values_list("pk", flat=True))
    if managers:
        return managers
    return list(
        users.filter(models.Q(groups__name=ADMIN) | models.Q(is_superuser=True))
        .distinct()
        .values_list("pk", flat=True)
    )


# -- the clocks ----------------------------------------------------------------------------------


def _settle(handoff: Handoff) -> None:
    """The handoff's overall SLA state from its two clocks."""
    states = {handoff.first_touch_state, handoff.decision_state}
    if SlaState.BREACHED in states:
        handoff.state = SlaState.BREACHED
    elif states == {SlaState.MET}:
        handoff.state = SlaState.MET
    else:
        handoff.state = SlaState.PENDING


def _stop_first_touch(handoff: Handoff, at: dt.datetime) -> bool:
    if handoff.first_touch_at is not None:
        return False
    touched = max(at, handoff.handed_off_at)
    handoff.first_touch_at = touched
    handoff.first_touch_seconds = int((touched - handoff.handed_off_at).total_seconds())
    if handoff.first_touch_state == SlaState.PENDING:
        late = handoff.first_touch_due is not None and touched > handoff.first_touch_due
        handoff.first_touch_state = SlaState.BREACHED if late else SlaState.MET
        if late and handoff.breached_at is None:
            handoff.breached_at = handoff.first_touch_due
    _settle(handoff)
    return True


def record_first_touch(touches: Mapping[int, dt.datetime]) -> int:
    """Stop the first-touch clock of the open handoffs of these contacts (contact → when).
    Returns how many clocks stopped; a contact already touched is left as it was."""
    if not touches:
        return 0
    with transaction.atomic():
        handoffs = list(
            Handoff.objects.select_for_update()
            .filter(open=True, contact_id__in=list(touches), first_touch_at__isnull=True)
            .order_by("pk")
        )
        stopped = [h for h in handoffs if _stop_first_touch(h, touches[h.contact_id])]
        Handoff.objects.bulk_update(
            stopped,
            ["first_touch_at", "first_touch_seconds", "first_touch_state", "state", "breached_at"],
        )
    return len(stopped)


def touched_by_activities(activity_ids: Iterable[int]) -> int:
    """A call, e-mail or meeting logged is the first touch of its contact's open handoff."""
    from embudo.crm.models import Activity

    touches: dict[int, dt.datetime] = {}
    now = timezone.now()
    for contact_id, occurred_at in Activity.objects.filter(
        pk__in=list(activity_ids), kind__in=TOUCH_KINDS
    ).values_list("contact_id", "occurred_at"):
        when = min(occurred_at or now, now)
        touches[contact_id] = min(touches.get(contact_id, when), when)
    return record_first_touch(touches)


def touched_by_status(contact_ids: Iterable[int]) -> int:
    """A lead status of attempting (or later) is the first touch of the open handoff."""
    now = timezone.now()
    touched = Contact.objects.filter(
        pk__in=list(contact_ids),
        lead_status__in=TOUCHED_STATUSES,
        handoffs__open=True,
        handoffs__first_touch_at__isnull=True,
    ).values_list("pk", flat=True)
    return record_first_touch(dict.fromkeys(touched, now))


def breach_due(handoff_ids: Sequence[int], clock: str, *, now: dt.datetime | None = None) -> int:
    """Breach the clocks among these handoffs that are still running past their deadline:
    tell the owner's manager and, where the policy says so, hand the lead to another rep.
    Safe to run twice, early or late: a clock already stopped, or not yet due, is left alone."""
    if clock not in CLOCKS:
        raise ValueError(f"unknown SLA clock {clock!r}")
    now = now or timezone.now()
    with transaction.atomic():
        handoffs = list(
            Handoff.objects.select_for_update(of=("self",))
            .select_related("policy", "contact")
            .filter(
                pk__in=list(handoff_ids),
                open=True,
                **{f"{clock}_state": SlaState.PENDING, f"{clock}_due__lte": now},
            )
            .order_by("pk")
        )
        if not handoffs:
            return 0
        reassign: dict[int, int] = {}
        for handoff in handoffs:
            setattr(handoff, f"{clock}_state", SlaState.BREACHED)
            handoff.breached_at = handoff.breached_at or getattr(handoff, f"{clock}_due")
            _settle(handoff)
            managers = managers_of(handoff.owner_id, handoff.team_id)
            handoff.escalated_to_id = managers[0] if managers else None
            what = (
                _say(gettext_noop("first touch"))
                if clock == FIRST_TOUCH
                else _say(gettext_noop("accept/reject"))
            )
            owner = (
                handoff.owner.get_username() if handoff.owner else _say(gettext_noop("the queue"))
            )
            _notify(
                managers,
                "breach",
                _say(gettext_noop("SLA breached (%(what)s) on %(lead)s held by %(owner)s"))
                % {"what": what, "lead": handoff.contact, "owner": owner},
                contact_id=handoff.contact_id,
                handoff_id=handoff.pk,
                now=now,
            )
            if handoff.policy and handoff.policy.reassign_on_breach and handoff.owner_id:
                handoff.open = False
                handoff.closed_at = now
                reassign[handoff.contact_id] = handoff.owner_id
        Handoff.objects.bulk_update(
            handoffs,
            [f"{clock}_state", "state", "breached_at", "escalated_to", "open", "closed_at"],
        )
        record_audit(
            "handoff.breach",
            "handoff",
            actor=None,
            changes={"clock": clock, "handoffs": [h.pk for h in handoffs]},
        )
        if reassign:
            hand_off(list(reassign), at=now, exclude_owner=reassign)
    return len(handoffs)


# -- manual reassignment -------------------------------------------------------------------------


def _seller(user_id: Any, field: str = "owner_id") -> Any:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ValidationFailed.one(field, f"no active user with id {user_id}")
    if role_of(user) not in {SALES, SALES_MANAGER, ADMIN}:
        raise ValidationFailed.one(field, f"{user.get_username()} has no sales role to own leads")
    return user


def reassign(handoff: Handoff, owner_id: Any, *, actor: Any = None) -> Handoff:
    """Give an open handoff (or a queued one) to another rep; its SLA clocks keep running."""
    if not handoff.open:
        raise ValidationFailed.one("handoff", "this handoff is closed; only an open one moves")
    owner = _seller(owner_id)
    with transaction.atomic():
        previous = handoff.owner_id
        team_id = (
            get_user_model()
            .objects.filter(pk=owner.pk)
            .values_list("sales_team_membership__team_id", flat=True)
            .first()
        )
        handoff.owner_id = owner.pk
        handoff.team_id = team_id or handoff.team_id
        who = actor.get_username() if getattr(actor, "is_authenticated", False) else "the system"
        handoff.routing_note = f"reassigned by {who}"
        handoff.save(update_fields=["owner", "team", "routing_note"])
        crm.update_contact(handoff.contact, {"owner_id": owner.pk}, actor=actor)
        _notify(
            [owner.pk],
            "assigned",
            _say(gettext_noop("%(lead)s was reassigned to you")) % {"lead": handoff.contact},
            contact_id=handoff.contact_id,
            handoff_id=handoff.pk,
        )
        record_audit(
            "handoff.reassign",
            "handoff",
            handoff.pk,
            actor=actor,
            changes={"from": previous, "to": owner.pk},
        )
    return handoff


def release_leads(user: Any, *, actor: Any = None) -> int:
    """Route a departing rep's open leads again (to colleagues or the queue). Returns how many."""
    with transaction.atomic():
        handoffs = list(Handoff.objects.select_for_update().filter(open=True, owner=user))
        if not handoffs:
            return 0
        now = timezone.now()
        Handoff.objects.filter(pk__in=[h.pk for h in handoffs]).update(open=False, closed_at=now)
        exclude = {h.contact_id: user.pk for h in handoffs}
        hand_off(list(exclude), at=now, actor=actor, exclude_owner=exclude)
        record_audit(
            "handoff.release", "user", user.pk, actor=actor, changes={"handoffs": len(handoffs)}
        )
    return len(handoffs)


# -- feedback ------------------------------------------------------------------------------------


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
    actor: Any = None,
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


# -- settings ------------------------------------------------------------------------------------

SETTINGS_MODELS: tuple[type[models.Model], ...] = (
    AssignmentRule,
    SlaPolicy,
    BusinessHours,
    Holiday,
    FeedbackReason,
    MarketingCommitment,
    RepAvailability,
    TeamRouting,
)


def _check(record: models.Model) -> None:
    """The record's own invariants, plus what the database cannot check, as field errors."""
    errors: dict[str, list[str]] = {}
    try:
        record.full_clean()
    except DjangoValidationError as error:
        for field, messages in error.message_dict.items():
            errors[field] = [str(m) for m in messages]
    if isinstance(record, AssignmentRule | SlaPolicy | MarketingCommitment):
        try:
            record.condition = assignment.validate_condition(record.condition)
        except ValidationFailed as failed:
            errors.update(failed.errors)
    if isinstance(record, BusinessHours):
        try:
            WorkingWeek.of(record.time_zone, record.weekdays, record.opens_at, record.closes_at)
        except (BusinessTimeError, TypeError) as error:
            errors.setdefault("weekdays", []).append(str(error))
    if isinstance(record, SlaPolicy) and record.business_hours_id is None:
        errors.setdefault("business_hours", []).append(
            "an SLA policy needs business hours to count its deadlines in"
        )
    if isinstance(record, RepAvailability):
        try:
            assignment.zone(record.time_zone)
        except BusinessTimeError as error:
            errors.setdefault("time_zone", []).append(str(error))
        if bool(record.works_from) != bool(record.works_until):
            errors.setdefault("works_until", []).append("give both ends of the working hours")
        elif record.works_from and record.works_until and record.works_until <= record.works_from:
            errors.setdefault("works_until", []).append("working hours end before they start")
        if record.away_from and record.away_until and record.away_until < record.away_from:
            errors.setdefault("away_until", []).append("the absence ends before it starts")
    if isinstance(record, MarketingCommitment):
        start = record.period_start
        if start and (
            start.day != 1 or (record.period_kind == "quarter" and start.month not in (1, 4, 7, 10))
        ):
            errors.setdefault("period_start", []).append(
                "a period starts on the first day of its month (a quarter: Jan, Apr, Jul, Oct)"
            )
        if record.condition and not record.segment_name:
            errors.setdefault("segment_name", []).append("name the segment the condition picks")
    if errors:
        raise ValidationFailed(errors)


def save_setting(record: models.Model, *, actor: Any = None) -> models.Model:
    """Create or update one settings record (rule, policy, hours, holiday, reason,
    commitment, availability), checked first; audited."""
    if not isinstance(record, SETTINGS_MODELS):
        raise TypeError(f"{type(record).__name__} is not a handoff setting")
    _check(record)
    created = record.pk is None
    if hasattr(record, "updated_at"):
        record.updated_at = timezone.now()
    try:
        with transaction.atomic():
            record.save()
            record_audit(
                f"handoff.{type(record).__name__.lower()}.{'create' if created else 'update'}",
                type(record).__name__.lower(),
                record.pk,
                actor=actor,
                changes={"name": str(record)},
            )
    except IntegrityError:
        raise ValidationFailed.one(
            "name", f"{type(record)._meta.verbose_name} {str(record)!r} already exists"
        ) from None
    return record


def delete_setting(record: models.Model, *, actor: Any = None) -> None:
    """Delete a settings record; one still in use (hours under a policy, a reason on feedback)
    is refused with a field error, and a reason can be deactivated instead."""
    if not isinstance(record, SETTINGS_MODELS):
        raise TypeError(f"{type(record).__name__} is not a handoff setting")
    try:
        with transaction.atomic():
            pk = record.pk
            record.delete()
            record_audit(
                f"handoff.{type(record).__name__.lower()}.delete",
                type(record).__name__.lower(),
                pk,
                actor=actor,
            )
    except models.ProtectedError:
        raise ValidationFailed.one(
            "id", f"{record} is still in use; deactivate it or change what uses it first"
        ) from None


def set_availability(user: Any, data: Mapping[str, Any], *, actor: Any = None) -> RepAvailability:
    """A rep's time zone, hours, absence and capacity (missing keys keep their value)."""
    record = RepAvailability.objects.filter(user=user).first() or RepAvailability(user=user)
    known = {
        "takes_leads",
        "time_zone",
        "weekdays",
        "works_from",
        "works_until",
        "away_from",
        "away_until",
        "capacity",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationFailed({name: ["unknown field"] for name in unknown})
    for name, value in data.items():
        setattr(record, name, value)
    save_setting(record, actor=actor)
    return record
