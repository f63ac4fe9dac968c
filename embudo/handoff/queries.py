"""Reads of the handoff app for its pages, its API and other apps (scoring learns from
rejections through :func:`rejections`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import F, Min, QuerySet

from embudo.accounts.actors import RequestUser
from embudo.accounts.roles import ADMIN, MARKETING, SALES_MANAGER, role_of
from embudo.handoff.models import (
    Feedback,
    FeedbackReason,
    Handoff,
    Notification,
    SlaState,
    Verdict,
)


def sees_team(user: RequestUser) -> bool:
    """Managers and admins see every rep's leads and the fallback queue."""
    return role_of(user) in {ADMIN, SALES_MANAGER}


def visible_handoffs(user: RequestUser | None) -> QuerySet[Handoff]:
    """``user=None`` is an API key: every handoff. A rep sees their own and the queue's."""
    query = Handoff.objects.all()
    if user is None or role_of(user) in {ADMIN, SALES_MANAGER, MARKETING}:
        return query
    if not isinstance(user, User):
        return query.none()
    return query.filter(owner=user) | query.filter(owner__isnull=True, open=True)


@dataclass(frozen=True)
class InboxFilter:
    owner_id: int | None = None  # None: the caller's own (a manager: everyone's)
    queue: bool = False  # only the fallback queue
    team_id: int | None = None
    state: str = ""


def inbox(user: User, filters: InboxFilter) -> QuerySet[Handoff]:
    """Open handoffs by first-touch due time (earliest first, none last), then by score."""
    query = visible_handoffs(user).filter(open=True)
    if filters.queue:
        query = query.filter(owner__isnull=True)
    elif filters.owner_id is not None:
        query = query.filter(owner_id=filters.owner_id)
    elif not sees_team(user):
        query = query.filter(owner=user)
    if filters.team_id is not None:
        query = query.filter(team_id=filters.team_id)
    if filters.state in SlaState.values:
        query = query.filter(state=filters.state)
    return query.select_related(
        "contact", "contact__company", "owner", "team", "policy", "rule"
    ).order_by(
        F("first_touch_due").asc(nulls_last=True),
        F("score").desc(nulls_last=True),
        "handed_off_at",
        "id",
    )


def handoff_detail(user: RequestUser | None, handoff_id: int) -> Handoff | None:
    return (
        visible_handoffs(user)
        .select_related("contact", "owner", "team", "policy", "rule", "reason")
        .filter(pk=handoff_id)
        .first()
    )


def handoffs_of(contact_id: int) -> QuerySet[Handoff]:
    return Handoff.objects.filter(contact_id=contact_id).select_related("owner", "reason")


def feedback_of(contact_id: int) -> QuerySet[Feedback]:
    return Feedback.objects.filter(contact_id=contact_id).select_related("reason", "actor")


def reasons(verdict: str | None = None, *, active_only: bool = True) -> QuerySet[FeedbackReason]:
    query = FeedbackReason.objects.all()
    if verdict:
        query = query.filter(verdict=verdict)
    return query.filter(active=True) if active_only else query


def notifications(user: User, *, unread_only: bool = False) -> QuerySet[Notification]:
    query = Notification.objects.filter(user=user)
    if unread_only:
        query = query.filter(read_at__isnull=True)
    return query.select_related("contact")


def rejections() -> QuerySet[Any]:
    """(contact id, time of the first rejection) for every contact sales rejected: the
    predictive model's negatives, whether the verdict disqualified them or sent them back to
    nurture."""
    return (
        Feedback.objects.filter(verdict=Verdict.REJECTED)
        .order_by()
        .values("contact_id")
        .annotate(at=Min("created_at"))
        .values_list("contact_id", "at")
    )
