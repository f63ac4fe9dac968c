"""Who gets an MQL: rules route contacts to a team, then round robin among the team's reps who
are available now and under their capacity. The actions write what it decides; it keeps only
each team's round-robin turn."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q

from embudo.crm.models import Contact
from embudo.deals import queries as deals_queries
from embudo.errors import ValidationFailed
from embudo.handoff.business_time import BusinessTimeError, zone
from embudo.handoff.models import AssignmentRule, Handoff, RepAvailability, TeamRouting
from embudo.segments import conditions

# -- conditions (the segments app's language) ----------------------------------------------------


def validate_condition(condition: Any, field: str = "condition") -> Any:
    """``condition`` checked against the segments language; empty means "every contact"."""
    if condition in (None, {}, []):
        return None
    try:
        return conditions.validate_condition(condition).data
    except conditions.ConditionError as error:
        raise ValidationFailed.one(field, str(error)) from None


def condition_q(condition: Any, now: dt.datetime) -> Q:
    """The condition as a filter over contacts (empty: every contact)."""
    if condition in (None, {}, []):
        return Q()
    return conditions.compile_condition(condition, now)


def matching(
    contact_ids: Sequence[int], condition: Any, countries: Sequence[str], now: dt.datetime
) -> set[int]:
    """The contacts among ``contact_ids`` that meet the condition and the territory."""
    if not contact_ids:
        return set()
    if condition in (None, {}, []) and not countries:
        return set(contact_ids)
    query = Contact.objects.filter(pk__in=contact_ids).filter(condition_q(condition, now))
    if countries:
        wanted = {c.strip().lower() for c in countries if c.strip()}
        query = query.filter(
            Q(company__country__iregex=r"^(" + "|".join(_escape(c) for c in wanted) + r")$")
        )
    return set(query.values_list("pk", flat=True))


def _escape(text: str) -> str:
    return "".join(f"\\{ch}" if not ch.isalnum() and ch != " " else ch for ch in text)


# -- availability --------------------------------------------------------------------------------


def is_available(availability: RepAvailability | None, now: dt.datetime) -> bool:
    """Whether a rep takes a new lead at ``now``: taking leads, not away, within their hours."""
    if availability is None:
        return True
    if not availability.takes_leads:
        return False
    try:
        local = now.astimezone(zone(availability.time_zone))
    except BusinessTimeError:
        local = now
    today = local.date()
    away_from, away_until = availability.away_from, availability.away_until
    if (away_from or away_until) and (away_from or today) <= today <= (away_until or today):
        return False
    if local.weekday() not in (availability.weekdays or []):
        return False
    start, end = availability.works_from, availability.works_until
    if start and end:
        return start <= local.time() < end
    return True


# -- round robin ----------------------------------------------------------------------------------


@dataclass
class Seat:
    """A rep of a team as the round robin sees them."""

    user_id: int
    open_leads: int
    capacity: int | None
    available: bool

    def can_take(self) -> bool:
        return self.available and (self.capacity is None or self.open_leads < self.capacity)


@dataclass(frozen=True)
class Route:
    team_id: int | None
    owner_id: int | None
    rule_id: int | None
    note: str


def team_seats(team_ids: Iterable[int], now: dt.datetime) -> dict[int, list[Seat]]:
    """Each team's active reps in a stable order (by user id), with their load and availability."""
    members: dict[int, list[int]] = defaultdict(list)
    for team in (
        deals_queries.teams().filter(pk__in=list(team_ids)).prefetch_related("memberships__user")
    ):
        for membership in team.memberships.all():
            if membership.user.is_active:
                members[team.pk].append(membership.user_id)
    user_ids = [u for ids in members.values() for u in ids]
    availability = {a.user_id: a for a in RepAvailability.objects.filter(user_id__in=user_ids)}
    load = dict(
        Handoff.objects.filter(open=True, owner_id__in=user_ids)
        .values_list("owner_id")
        .annotate(n=Count("id"))
        .values_list("owner_id", "n")
    )
    seats: dict[int, list[Seat]] = {}
    for team_id, ids in members.items():
        seats[team_id] = [
            Seat(
                user_id=user_id,
                open_leads=load.get(user_id, 0),
                capacity=availability[user_id].capacity if user_id in availability else None,
                available=is_available(availability.get(user_id), now),
            )
            for user_id in sorted(ids)
        ]
    return seats


def round_robin(
    seats: list[Seat],
    count: int,
    last_user_id: int | None,
    exclude: set[int] = frozenset(),  # type: ignore[assignment]
) -> list[int | None]:
    """Owners for ``count`` leads in turn, starting after ``last_user_id``; None once no rep
    can take more (every seat away or full). Loads in ``seats`` are updated as leads go."""
    order = [s for s in seats if s.user_id not in exclude]
    if not order:
        return [None] * count
    start = 0
    if last_user_id is not None:
        later = [i for i, s in enumerate(order) if s.user_id > last_user_id]
        start = later[0] if later else 0
    owners: list[int | None] = []
    position = start
    for _ in range(count):
        chosen = None
        for step in range(len(order)):
            seat = order[(position + step) % len(order)]
            if seat.can_take():
                chosen = seat
                position = (position + step + 1) % len(order)
                break
        if chosen is None:
            owners.extend([None] * (count - len(owners)))
            break
        chosen.open_leads += 1
        owners.append(chosen.user_id)
    return owners


def route(
    contact_ids: Sequence[int], now: dt.datetime, *, exclude_owner: dict[int, int] | None = None
) -> dict[int, Route]:
    """Where each contact goes: the first matching rule's team and that team's next rep.

    A contact no rule matches, or whose team has nobody available under capacity, gets a route
    with no owner: the fallback queue. ``exclude_owner`` skips a rep for a contact (a lead
    reassigned on breach does not go back to the rep who let it lapse).
    """
    exclude_owner = exclude_owner or {}
    remaining = list(contact_ids)
    by_rule: list[tuple[AssignmentRule, list[int]]] = []
    for rule in AssignmentRule.objects.filter(active=True).order_by("position", "id"):
        if not remaining:
            break
        matched = matching(remaining, rule.condition, rule.countries, now)
        if matched:
            by_rule.append((rule, [c for c in remaining if c in matched]))
            remaining = [c for c in remaining if c not in matched]
    routes: dict[int, Route] = {
        c: Route(None, None, None, "no assignment rule matches") for c in remaining
    }
    seats = team_seats({rule.team_id for rule, _ in by_rule}, now)
    cursors = {
        r.team_id: r
        for r in TeamRouting.objects.filter(team_id__in=[r.team_id for r, _ in by_rule])
    }
    last: dict[int, int | None] = {
        team_id: routing.last_assigned_id for team_id, routing in cursors.items()
    }
    for rule, ids in by_rule:
        team_seats_ = seats.get(rule.team_id, [])
        plain = [c for c in ids if c not in exclude_owner]
        owners = round_robin(team_seats_, len(plain), last.get(rule.team_id))
        chosen = dict(zip(plain, owners, strict=True))
        for contact_id in ids:
            if contact_id in exclude_owner:
                [owner] = round_robin(
                    team_seats_, 1, last.get(rule.team_id), {exclude_owner[contact_id]}
                )
                chosen[contact_id] = owner
        for contact_id in ids:
            owner = chosen[contact_id]
            if owner is not None:
                last[rule.team_id] = owner
            note = (
                f"rule {rule.name}: round robin in {rule.team}"
                if owner is not None
                else f"rule {rule.name}: nobody in {rule.team} is available under capacity"
            )
            routes[contact_id] = Route(rule.team_id, owner, rule.pk, note)
    for team_id, user_id in last.items():
        if user_id is not None:
            TeamRouting.objects.update_or_create(
                team_id=team_id, defaults={"last_assigned_id": user_id}
            )
    return routes
