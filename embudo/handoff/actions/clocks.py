"""The two SLA clocks of a handoff (first touch, then accept or reject): their deadlines under the
contact's policy and business hours, the tasks that check them, and stopping them when a rep
reaches out or decides.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from embudo.crm.models import Contact, LeadStatus
from embudo.handoff import assignment
from embudo.handoff.business_time import WorkingWeek, add_business_minutes
from embudo.handoff.models import BusinessHours, Handoff, SlaPolicy, SlaState

FIRST_TOUCH = "first_touch"


DECISION = "decision"


CLOCKS = (FIRST_TOUCH, DECISION)


# Lead statuses that mean the rep has reached out: the first touch.
TOUCHED_STATUSES = (LeadStatus.ATTEMPTING, LeadStatus.CONNECTED, LeadStatus.QUALIFIED)


# Activities that count as a first touch (a note or a task does not).
TOUCH_KINDS = ("call", "email", "meeting")


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
