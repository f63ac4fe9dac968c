"""Computing scores, set-based: the SQL finds who matches each rule, numpy adds the points up
(a query per fit rule, or one with a flag per rule for a few contacts, and one pass over the
events for every engagement rule); for one contact the queries' SQL is built once and reused."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import BooleanField, Case, Expression, IntegerField, Q, QuerySet, Value, When

from embudo import caches
from embudo.crm.models import Contact
from embudo.db.columns import Query, row_blocks, row_matrix
from embudo.db.functions import EpochSeconds
from embudo.scoring.arithmetic import Params, cap_fit, normalised_weight
from embudo.scoring.engine.plans import Plan, Rule, event_q, fit_q
from embudo.tracking.models import Event

# Events older than this many half-lives weigh under 1/1,024 of their points: no longer read.
HORIZON_HALF_LIVES = 10
# Engagement rules read together in one pass over the events (one bit each in a 64-bit mask).
RULES_PER_PASS = 48


# -- computing ----------------------------------------------------------------------------------


@dataclass
class Computed:
    """New scores of ``ids`` (sorted) under one plan, as of ``now``."""

    plan: Plan
    now: dt.datetime
    ids: np.ndarray
    contributions: np.ndarray  # (contacts, rules): fit points; engagement normalised
    fit: np.ndarray = field(init=False)
    engagement_norm: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n_fit = len(self.plan.fit_rules)
        self.fit = cap_fit(self.contributions[:, :n_fit].sum(axis=1), self.plan.params)
        self.engagement_norm = self.contributions[:, n_fit:].sum(axis=1)


def compute_all(plan: Plan, now: dt.datetime) -> Computed:
    """Every contact's score under ``plan``: a query per fit rule, one pass over the events."""
    ids = _column(Contact.objects.order_by("pk").values_list("pk"))
    contributions = np.zeros((len(ids), len(plan.rules)))
    for j, rule in enumerate(plan.fit_rules):
        matched = _column(Contact.objects.filter(fit_q(rule, now)).values_list("pk"))
        contributions[_positions(ids, matched), j] = rule.points
    events = _events(plan, now)
    _add_engagement(
        plan, now, ids, contributions, lambda _first, build: build(events, now), full_scan=True
    )
    return Computed(plan, now, ids, contributions)


def compute_some(plan: Plan, contact_ids: Sequence[int], now: dt.datetime) -> Computed:
    """A few contacts' scores under ``plan``: one query for all fit rules (each rule a flag
    column) and one pass for all engagement rules.

    For one contact (an event just came in) the two queries' SQL is built once per plan and
    reused with the contact's id and the moment: building them through the ORM would cost
    more than running them (see :func:`_reusable_sql`)."""
    ids = np.unique(np.asarray(contact_ids, dtype=np.int64))
    contributions = np.zeros((len(ids), len(plan.rules)))
    if not len(ids):
        return Computed(plan, now, ids, contributions)
    single = len(ids) == 1
    id_list = ids.tolist()

    def query(kind: str, build: Build) -> Query:
        if not single:
            return build(id_list, now)
        return _reusable_sql((plan.fingerprint, kind), build, id_list[0], now)

    if plan.fit_rules:
        flags = [f"r{j}" for j in range(len(plan.fit_rules))]

        def fit_rows(some: list[int], at: dt.datetime) -> QuerySet[Any]:
            return (
                Contact.objects.filter(pk__in=some)
                .annotate(
                    **{f: _flag(fit_q(r, at)) for f, r in zip(flags, plan.fit_rules, strict=True)}
                )
                .values_list("pk", *flags)
            )

        rows = row_matrix(query("fit", fit_rows), 1 + len(flags))
        positions = _positions(ids, rows[:, 0])
        for j, rule in enumerate(plan.fit_rules):
            hit = rows[:, 1 + j] > 0
            contributions[positions[hit], j] = rule.points

    def events_of(first: int, build: EventsBuild) -> Query:
        return query(
            f"events{first}",
            lambda some, at: build(_events(plan, at).filter(contact_id__in=some), at),
        )

    _add_engagement(plan, now, ids, contributions, events_of, full_scan=False)
    return Computed(plan, now, ids, contributions)


# A query for some contacts as of a moment.
Build = Callable[[list[int], dt.datetime], QuerySet[Any]]
# Events (already narrowed to some contacts and to the horizon) into rows, as of a moment.
EventsBuild = Callable[[QuerySet[Event], dt.datetime], QuerySet[Any]]
# Stands for the contact's id while a reusable query's SQL is built.
_PLACEHOLDER_ID = -918_273_645
# Two moments a reusable query is built for, to find which parameters follow the moment: far
# apart in every unit (year, month, day, hour…) so that a parameter derived from any of them
# differs between the two.
_PROBES = (
    dt.datetime(2001, 2, 3, 4, 5, 6, 789_012, tzinfo=dt.UTC),
    dt.datetime(2003, 7, 19, 13, 27, 45, 123_457, tzinfo=dt.UTC),
)


@dataclass(frozen=True)
class _Template:
    sql: str
    params: list[Any]
    contact: int  # where the contact's id goes
    moments: tuple[tuple[int, dt.timedelta], ...]  # where "the moment + offset" goes


_SQL: dict[tuple[Any, ...], _Template | None] = {}
caches.register("scoring.one_contact_sql", _SQL.clear)
_UNBUILT = object()


def _reusable_sql(key: tuple[Any, ...], build: Build, contact_id: int, at: dt.datetime) -> Query:
    """``build([contact_id], at)`` as SQL and parameters, the SQL built once per ``key``.

    The query is built for a stand-in contact at two probe moments; parameters equal in both
    are constants, the stand-in is the contact's slot, and each other parameter must be a
    time at a fixed offset from the moment ("in the last 14 days": the moment minus 14 days),
    filled in for ``at``. A query with anything else depending on the moment (a score
    condition's threshold, which grows with it) is built afresh each time."""
    template = _SQL.get(key, _UNBUILT)
    if template is _UNBUILT:  # (one lookup: another thread may clear the cache meanwhile)
        if len(_SQL) > 512:
            _SQL.clear()
        template = _SQL[key] = _template(build)
    if not isinstance(template, _Template):
        return build([contact_id], at)
    params = template.params.copy()
    params[template.contact] = contact_id
    for where, offset in template.moments:
        params[where] = _adapt_time(at + offset)
    return template.sql, params


def _template(build: Build) -> _Template | None:
    first, second = (build([_PLACEHOLDER_ID], probe).query.sql_with_params() for probe in _PROBES)
    sql, params = first[0], list(first[1])
    if sql != second[0] or len(params) != len(second[1]) or params.count(_PLACEHOLDER_ID) != 1:
        return None
    moments = []
    for where, (one, two) in enumerate(zip(params, second[1], strict=True)):
        if one == two:
            continue
        time = _time_of(one)
        if time is None:
            return None
        offset = time - _PROBES[0]
        if _adapt_time(_PROBES[0] + offset) != one:
            return None
        if _adapt_time(_PROBES[1] + offset) != two:
            return None
        moments.append((where, offset))
    return _Template(sql, params, params.index(_PLACEHOLDER_ID), tuple(moments))


def _adapt_time(value: dt.datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _time_of(param: Any) -> dt.datetime | None:
    """A query parameter as an aware time, if it is one (SQLite's are text, in UTC)."""
    if isinstance(param, dt.datetime):
        return param if param.tzinfo else param.replace(tzinfo=dt.UTC)
    if isinstance(param, str):
        try:
            return dt.datetime.fromisoformat(param).replace(tzinfo=dt.UTC)
        except ValueError:
            return None
    return None


def _add_engagement(
    plan: Plan,
    now: dt.datetime,
    ids: np.ndarray,
    contributions: np.ndarray,
    events_of: Callable[[int, EventsBuild], Query],
    *,
    full_scan: bool,
) -> None:
    """Fill the engagement columns from one pass over the events matching any rule: each row
    is (contact, time, a bit per rule it matches), so the events are read once, not per rule.
    ``events_of(first, build)`` gives the query for the group of rules starting at ``first``,
    ``build`` turning a queryset of events into it."""
    offset = len(plan.fit_rules)
    rules = plan.engagement_rules
    for first in range(0, len(rules), RULES_PER_PASS):
        group = rules[first : first + RULES_PER_PASS]

        def build(
            events: QuerySet[Event], at: dt.datetime, group: tuple[Rule, ...] = group
        ) -> QuerySet[Any]:
            filters = [event_q(rule, at) for rule in group]
            mask = reduce(
                operator.add,
                [
                    Case(When(q, then=Value(1 << j)), default=Value(0), output_field=IntegerField())
                    for j, q in enumerate(filters)
                ],
            )
            return events.filter(reduce(or_, filters)).values_list(
                "contact_id", EpochSeconds("occurred_at"), mask
            )

        positions, times, bits = _event_rows(
            events_of(first, build), ids, scan=Event._meta.db_table if full_scan else None
        )
        for j, rule in enumerate(group):
            hit = (bits >> j) & 1 == 1
            contributions[:, offset + first + j] = _engagement(
                rule, plan.params, len(ids), positions[hit], times[hit]
            )


def _event_rows(
    queryset: Query, ids: np.ndarray, *, scan: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position of the contact in ``ids``, epoch seconds, rule bits) of each event row, turned
    into compact arrays a chunk at a time, so ten million events stay a few hundred MB."""
    positions, times, bits = [], [], []
    for chunk in row_blocks(queryset, 3, scan=scan):
        idx = _positions(ids, chunk[:, 0])
        known = idx >= 0
        positions.append(idx[known].astype(np.int32))
        times.append(chunk[known, 1])
        bits.append(chunk[known, 2].astype(np.int64))
    if not positions:
        return np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate(positions), np.concatenate(times), np.concatenate(bits)


def _events(plan: Plan, now: dt.datetime) -> QuerySet[Event]:
    horizon = now - dt.timedelta(days=plan.params.half_life_days * HORIZON_HALF_LIVES)
    return Event.objects.filter(
        contact__isnull=False, occurred_at__gte=horizon, occurred_at__lte=now
    )


def _flag(q: Q) -> Expression:
    return Case(When(q, then=Value(True)), default=Value(False), output_field=BooleanField())


def _engagement(
    rule: Rule, params: Params, n: int, positions: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """Each of ``n`` contacts' normalised points from ``rule``'s matching events, given as the
    contact's position and the event's time."""
    if not len(positions):
        return np.zeros(n)
    weights = rule.points * normalised_weight(times, params)
    limit = rule.counted_events
    if limit is None:
        return np.bincount(positions, weights=weights, minlength=n)
    # The most recent events count first: rank each contact's events newest first.
    order = np.lexsort((-times, positions))
    idx, weights = positions[order], weights[order]
    starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])
    rank = np.arange(len(idx)) - np.repeat(starts, np.diff(np.r_[starts, len(idx)]))
    share = np.clip(limit - rank, 0.0, 1.0)
    return np.bincount(idx, weights=weights * share, minlength=n)


def _positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each of ``wanted`` stands in the sorted ``ids`` (-1: not there)."""
    wanted = np.asarray(wanted, dtype=np.int64)
    if not len(ids):
        return np.full(len(wanted), -1, dtype=np.int64)
    idx = np.searchsorted(ids, wanted)
    idx[idx >= len(ids)] = 0
    return np.where(ids[idx] == wanted, idx, -1)


def _column(queryset: QuerySet[Any]) -> np.ndarray:
    return row_matrix(queryset, 1)[:, 0].astype(np.int64)


def _matrix(queryset: QuerySet[Any], names: list[str]) -> np.ndarray:
    return row_matrix(queryset.values_list(*names), len(names))
