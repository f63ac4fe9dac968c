"""The demo company's SLA: business hours with holidays, routing rules by territory, two SLA
tiers, rejection reasons, marketing commitments, and a year of handoffs with their clocks met or
breached and sales' verdicts, read off the contacts' lifecycle paths and activities."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model

from embudo.crm.models import Activity, LifecycleStage
from embudo.deals import queries as deals_queries
from embudo.deals.periods import add_months
from embudo.demo import vocabulary as words
from embudo.handoff import actions
from embudo.handoff.actions.clocks import _settle
from embudo.handoff.business_time import add_business_minutes
from embudo.handoff.models import (
    AssignmentRule,
    BusinessHours,
    Feedback,
    FeedbackReason,
    Handoff,
    Holiday,
    MarketingCommitment,
    Notification,
    SlaPolicy,
    SlaState,
    Verdict,
)

S = LifecycleStage

REJECT_REASONS = (
    # (name, disqualifies, bad fit)
    ("Bad fit", True, True),
    ("No budget", False, False),
    ("Wrong person", False, False),
    ("Duplicate", True, False),
    ("Competitor", True, False),
    ("Spam", True, False),
)
RECYCLE_REASONS = ("Not now", "No response", "Timing: next quarter")
# The demo's disqualification notes, as the reasons sales would pick.
NOTE_REASONS = {
    "student or job seeker": "Bad fit",
    "company too small": "Bad fit",
    "competitor": "Competitor",
    "spam sign-up": "Spam",
}
SPANISH_HOLIDAYS = ((1, 1), (1, 6), (5, 1), (8, 15), (10, 12), (11, 1), (12, 6), (12, 8), (12, 25))
ENTERPRISE_EMPLOYEES = 500


def seed_handoff(ctx: Any) -> None:
    rng = ctx.rng("handoff")
    hours = BusinessHours.objects.create(name="Madrid office", time_zone="Europe/Madrid")
    year = ctx.now.year
    Holiday.objects.bulk_create(
        Holiday(business_hours=hours, date=dt.date(y, m, d), name="Fiesta")
        for y in (year - 1, year, year + 1)
        for m, d in SPANISH_HOLIDAYS
    )
    enterprise = SlaPolicy.objects.create(
        name="Enterprise accounts",
        position=1,
        condition={"field": "company.employees", "op": "gte", "value": ENTERPRISE_EMPLOYEES},
        business_hours=hours,
        first_touch_minutes=9 * 60,
        decision_minutes=5 * 9 * 60,
        reassign_on_breach=True,
    )
    standard = SlaPolicy.objects.create(
        name="Standard",
        position=2,
        business_hours=hours,
        first_touch_minutes=2 * 9 * 60,
        decision_minutes=10 * 9 * 60,
    )
    teams = {t.name: t for t in deals_queries.teams()}
    for position, (region, name) in enumerate(
        (("iberia", "Iberia"), ("latam", "LATAM"), ("english", "English-speaking")), start=1
    ):
        if name not in teams:
            continue
        countries = sorted(c for c, r in words.REGION_OF_COUNTRY.items() if r == region)
        AssignmentRule.objects.create(
            name=f"{name} territory", position=position, team=teams[name], countries=countries
        )
    reasons: dict[str, FeedbackReason] = {}
    for position, (name, disqualifies, bad_fit) in enumerate(REJECT_REASONS):
        reasons[name] = FeedbackReason.objects.create(
            name=name, disqualifies=disqualifies, bad_fit=bad_fit, position=position
        )
    for position, name in enumerate(RECYCLE_REASONS):
        reasons[name] = FeedbackReason.objects.create(
            name=name, verdict=Verdict.RECYCLED, position=position
        )

    by_pk = {c.pk: c for c in ctx.contacts}
    big = {
        c.pk
        for c in ctx.contacts
        if c.company and (c.company.employees or 0) >= ENTERPRISE_EMPLOYEES
    }
    first_touches = _first_touches(ctx)
    team_of = dict(get_user_model().objects.values_list("pk", "sales_team_membership__team_id"))
    week = actions.week_of(hours)
    handoffs: list[Handoff] = []
    feedback: list[tuple[int, Feedback]] = []
    for pk, path in ctx.paths.items():
        contact = by_pk[pk]
        if contact.owner_id is None:
            continue
        for index, stop in enumerate(path):
            if stop.stage != S.MQL:
                continue
            after = path[index + 1] if index + 1 < len(path) else None
            policy = enterprise if pk in big else standard
            at = stop.at
            first_due = add_business_minutes(at, policy.first_touch_minutes, week)
            decision_due = add_business_minutes(at, policy.decision_minutes, week)
            touched = next((t for t in first_touches.get(pk, []) if t >= at), None)
            if after is not None and touched and touched > after.at:
                touched = None
            if touched is None and after is not None and after.stage == S.SQL:
                touched = after.at
            handoff = Handoff(
                contact_id=pk,
                handed_off_at=at,
                owner_id=contact.owner_id,
                team_id=team_of.get(contact.owner_id),
                policy=policy,
                routing_note="territory rule: round robin",
                source=contact.original_source,
                campaign=contact.original_campaign,
                first_touch_due=first_due,
                decision_due=decision_due,
                open=after is None and contact.lifecycle_stage == S.MQL,
            )
            if touched is not None and touched <= ctx.now:
                handoff.first_touch_at = touched
                handoff.first_touch_seconds = int((touched - at).total_seconds())
                handoff.first_touch_state = (
                    SlaState.MET if touched <= first_due else SlaState.BREACHED
                )
            elif first_due <= ctx.now:
                handoff.first_touch_state = SlaState.BREACHED
            if after is not None:
                verdict, reason = _verdict(after, reasons, rng)
                if verdict:
                    handoff.verdict, handoff.reason = verdict, reason
                    handoff.decided_at = handoff.closed_at = after.at
                    handoff.decision_state = (
                        SlaState.MET if after.at <= decision_due else SlaState.BREACHED
                    )
                    feedback.append(
                        (
                            len(handoffs),
                            Feedback(
                                contact_id=pk,
                                verdict=verdict,
                                reason=reason,
                                from_stage=S.MQL,
                                to_stage=after.stage,
                                actor_id=contact.owner_id,
                                created_at=after.at,
                            ),
                        )
                    )
                else:
                    handoff.closed_at = after.at
            elif decision_due <= ctx.now and handoff.open:
                handoff.decision_state = SlaState.BREACHED
            _settle(handoff)
            if handoff.state == SlaState.BREACHED:
                handoff.breached_at = min(
                    d
                    for d, s in (
                        (first_due, handoff.first_touch_state),
                        (decision_due, handoff.decision_state),
                    )
                    if s == SlaState.BREACHED
                )
            handoffs.append(handoff)
    Handoff.objects.bulk_create(handoffs, batch_size=1_000)
    for index, row in feedback:
        row.handoff_id = handoffs[index].pk
    Feedback.objects.bulk_create([row for _i, row in feedback], batch_size=1_000)
    _commitments(ctx, rng)
    manager = ctx.users.get("sofia")
    if manager is not None:
        recent = [h for h in handoffs if h.open and h.state == SlaState.BREACHED][-5:]
        Notification.objects.bulk_create(
            Notification(
                user=manager,
                kind="breach",
                message=f"SLA breached (first touch) on contact {h.contact_id}",
                contact_id=h.contact_id,
                handoff_id=h.pk,
                created_at=h.breached_at or ctx.now,
                emailed_at=ctx.now,
            )
            for h in recent
        )
    ctx.counts["handoffs"] = len(handoffs)
    ctx.counts["feedback"] = len(feedback)


def _first_touches(ctx: Any) -> dict[int, list[dt.datetime]]:
    """Each contact's sales calls, e-mails and meetings, in time order."""
    touches: dict[int, list[dt.datetime]] = {}
    rows = (
        Activity.objects.filter(kind__in=actions.TOUCH_KINDS, actor__isnull=False)
        .order_by("contact_id", "occurred_at")
        .values_list("contact_id", "occurred_at")
    )
    for contact_id, occurred_at in rows:
        touches.setdefault(contact_id, []).append(occurred_at)
    return touches


def _verdict(
    after: Any, reasons: dict[str, FeedbackReason], rng: Any
) -> tuple[str, FeedbackReason | None]:
    if after.stage == S.SQL:
        return Verdict.ACCEPTED, None
    if after.stage == S.DISQUALIFIED:
        name = NOTE_REASONS.get(after.note) or rng.choice(("Bad fit", "Duplicate", "Spam"))
        return Verdict.REJECTED, reasons[name]
    if after.stage == S.LEAD:
        if rng.random() < 0.35:
            return Verdict.REJECTED, reasons[rng.choice(("No budget", "Wrong person"))]
        return Verdict.RECYCLED, reasons[rng.choice(RECYCLE_REASONS)]
    return "", None


def _commitments(ctx: Any, rng: Any) -> None:
    """A monthly MQL commitment for the last six months and this one, near what came."""
    this_month = ctx.now.date().replace(day=1)
    target = 10
    for back in range(6, -1, -1):
        start = add_months(this_month, -back)
        if back:  # a finished month: near what came; this month: a little more than the last
            delivered = Handoff.objects.filter(
                handed_off_at__gte=_midnight(start),
                handed_off_at__lt=_midnight(add_months(start, 1)),
            ).count()
            target = max(10, round(delivered * rng.uniform(0.85, 1.1) / 5) * 5)
        else:
            target = max(10, round(target * 1.1 / 5) * 5)
        MarketingCommitment.objects.create(
            period_kind="month",
            period_start=start,
            mql_volume=target,
            min_rate=rng.choice(("0.60", "0.65", "0.70")),
        )


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
