"""Computing scores, set-based: the SQL finds who matches each rule, numpy adds the points up.

:func:`rescore_model` recomputes every contact under one model (rules changed);
:func:`rescore_contacts` recomputes a few contacts under every enabled model (a new event, a
changed property). Both compute first and then write, in one transaction, only the rows whose
score changed, with a history row each; contacts that newly meet a model's MQL rule move to
``mql``. A failure before the commit leaves every previous score as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, reduce
from operator import or_
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Expression,
    IntegerField,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from embudo import caches, pipeline
from embudo.crm import actions as crm
from embudo.crm.models import Contact, LifecycleStage, TransitionCause
from embudo.db.columns import Query, row_blocks, row_matrix
from embudo.db.functions import EpochSeconds
from embudo.db.writer import no_checkpoint_at_commit
from embudo.scoring.arithmetic import (
    Params,
    band_of,
    cap_fit,
    engagement_at,
    normalised_weight,
    qualifies,
    total_of,
)
from embudo.scoring.models import ContactScore, RuleKind, ScoreHistory, ScoreRule, ScoringModel
from embudo.tracking.models import Event

# Events older than this many half-lives weigh under 1/1,024 of their points: no longer read.
HORIZON_HALF_LIVES = 10
# Engagement rules read together in one pass over the events (one bit each in a 64-bit mask).
RULES_PER_PASS = 48
# Past this many half-lives since its epoch, a full rescore moves the model's epoch to now, so
# normalised engagement (which grows by 2x per half-life) stays far from overflowing.
REBASE_HALF_LIVES = 256
# Stages the MQL rule promotes from: it never moves anyone back down the funnel.
PROMOTABLE = (LifecycleStage.SUBSCRIBER, LifecycleStage.LEAD)
REASONS_KEPT = 5
# Score rows written per slice (see save).
WRITE_ROWS = 50_000
ID_CHUNK = 5_000


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    kind: str
    condition: Any
    points: float
    repeatable: bool
    max_points: float | None

    @property
    def counted_events(self) -> float | None:
        """How many of the most recent matching events count (None: all of them); the last
        one may count in part, so a cap of 10 on 3-point events allows 3⅓ events."""
        if not self.repeatable:
            return 1.0
        if self.max_points is None or not self.points:
            return None
        return max(0.0, self.max_points / abs(self.points))


@dataclass(frozen=True)
class Plan:
    """One model, its numbers and its rules, ready to compute."""

    model_id: int
    key: str
    version: int
    params: Params
    fit_rules: tuple[Rule, ...]
    engagement_rules: tuple[Rule, ...]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.fit_rules + self.engagement_rules

    @cached_property
    def reads(self) -> frozenset[str]:
        """The fields of the condition language its rules read (``event``: behaviour)."""
        from embudo.segments.conditions import fields_read

        names = set().union(*(fields_read(rule.condition) for rule in self.fit_rules))
        if self.engagement_rules:
            names.add("event")
        return frozenset(names)

    @cached_property
    def fingerprint(self) -> str:
        """Everything the plan's queries depend on, as text (a cache key)."""
        return json.dumps(
            [self.model_id, self.version, repr(self.params)]
            + [
                [r.id, r.kind, r.condition, r.points, r.repeatable, r.max_points]
                for r in self.rules
            ],
            sort_keys=True,
            default=str,
        )


def plan_for(model: ScoringModel, rules: Sequence[ScoreRule] | None = None) -> Plan:
    if rules is None:
        rules = list(ScoreRule.objects.filter(model=model).order_by("kind", "position", "pk"))
    compact = [
        Rule(r.pk, r.name, r.kind, r.condition, r.points, r.repeatable, r.max_points) for r in rules
    ]
    return Plan(
        model_id=model.pk,
        key=model.key,
        version=model.version,
        params=Params.of(model),
        fit_rules=tuple(r for r in compact if r.kind == RuleKind.FIT),
        engagement_rules=tuple(r for r in compact if r.kind == RuleKind.ENGAGEMENT),
    )


def enabled_plans() -> list[Plan]:
    """Every enabled model with its rules, read fresh each time: rules change rarely, but a
    stale rule must never score anyone.

    Each new event asks for them, so the rows are read as stored, by two queries whose SQL is
    built once, and the plans made from them are kept per distinct content: the same rows
    give the same plans without the ORM building two querysets, twenty rule objects and the
    plans' cache keys again (3 ms of CPU a call measured on the 2-core machine, against
    0.3 ms). Any change to a model or a rule changes the rows, hence the plans."""
    key = _plan_rows()
    plans = _PLANS.get(key)
    if plans is None:
        plans = _read_plans()
        if _plan_rows() == key:  # unchanged while being read: safe to keep
            if len(_PLANS) > 64:
                _PLANS.clear()
            _PLANS[key] = plans
    return plans


_PLANS: dict[Any, list[Plan]] = {}
caches.register("scoring.plans", _PLANS.clear)


def _read_plans() -> list[Plan]:
    models = list(ScoringModel.objects.filter(enabled=True).order_by("pk"))
    rules: dict[int, list[ScoreRule]] = {m.pk: [] for m in models}
    for rule in ScoreRule.objects.filter(model__enabled=True).order_by("kind", "position", "pk"):
        rules.setdefault(rule.model_id, []).append(rule)
    return [plan_for(m, rules[m.pk]) for m in models]


# The columns a plan is made of (see plan_for): a change to any of them makes other plans.
PLAN_COLUMNS = {
    "models": (
        "id", "key", "enabled", "version", "epoch", "half_life_days", "fit_cap",
        "engagement_cap", "total_cap", "band_a", "band_b", "band_c", "mql_fit",
        "mql_engagement", "mql_total",
    ),
    "rules": (
        "id", "model_id", "kind", "name", "condition", "points", "repeatable", "max_points",
        "position",
    ),
}  # fmt: skip


def _plan_rows() -> Any:
    """The enabled models' and their rules' rows, as stored (a cache key)."""

    def models() -> QuerySet[Any]:
        return (
            ScoringModel.objects.filter(enabled=True)
            .order_by("pk")
            .values_list(*PLAN_COLUMNS["models"])
        )

    def rules() -> QuerySet[Any]:
        return (
            ScoreRule.objects.filter(model__enabled=True)
            .order_by("pk")
            .values_list(*PLAN_COLUMNS["rules"])
        )

    rows = []
    with connection.cursor() as cursor:
        for name, build in (("models", models), ("rules", rules)):
            cursor.execute(*_built_once(name, build))
            rows.append(tuple(cursor.fetchall()))
    key = (connection.alias, *rows)
    try:
        hash(key)
    except TypeError:  # a driver that decodes JSON into dicts
        return repr(key)
    return key


_BUILT: dict[tuple[str, str], tuple[str, tuple[Any, ...]]] = {}
caches.register("scoring.plan_rows_sql", _BUILT.clear)


def _built_once(name: str, build: Callable[[], QuerySet[Any]]) -> tuple[str, tuple[Any, ...]]:
    """The SQL of a query that depends on nothing but the schema, built by the ORM once."""
    key = (connection.alias, name)
    if key not in _BUILT:
        sql, params = build().query.sql_with_params()
        _BUILT[key] = (sql, tuple(params))
    return _BUILT[key]


def fit_q(rule: Rule, now: dt.datetime) -> Q:
    from embudo.segments.conditions import compile_condition

    return compile_condition(rule.condition, now)


def event_q(rule: Rule, now: dt.datetime) -> Q:
    from embudo.segments.conditions import compile_event_filter

    return compile_event_filter(rule.condition, now)


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


# -- writing ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a computation changed."""

    contacts: int = 0
    changed: int = 0
    promoted: list[int] = field(default_factory=list)


def save(computed: Computed, *, cause: str, rebase: bool = False, promote: bool = True) -> Outcome:
    """Write the changed scores and their history, and promote new MQLs; call inside a
    transaction (the callers hold one), so a failure leaves the previous scores."""
    plan, now, params = computed.plan, computed.now, computed.plan.params
    ids = computed.ids
    old = _old_scores(plan, ids)
    new_params = params
    if rebase:
        # The model moves its epoch to now: old values are re-expressed against it.
        new_params = _rebased(params, now)
        factor = params.growth(now)
        computed.engagement_norm = computed.engagement_norm / factor
        computed.contributions[:, len(plan.fit_rules) :] /= factor
        ScoringModel.objects.filter(pk=plan.model_id).update(epoch=now)
        old.engagement_norm = old.engagement_norm / factor

    fit, norm = computed.fit, computed.engagement_norm
    engagement = engagement_at(norm, new_params, now)
    total = total_of(fit, engagement, new_params)
    met = qualifies(fit, engagement, total, new_params)

    old_engagement = engagement_at(old.engagement_norm, new_params, now)
    old_met = qualifies(
        old.fit, old_engagement, total_of(old.fit, old_engagement, new_params), new_params
    )
    changed = ~np.isclose(fit, old.fit, rtol=1e-9, atol=1e-9) | ~np.isclose(
        norm, old.engagement_norm, rtol=1e-9, atol=1e-12
    )
    # Score rows exist only for contacts with something to say; a missing row reads as zero.
    changed &= old.exists | (fit != 0) | (norm != 0)
    flag_changed = old.exists & (old.qualified != met)
    write = changed | flag_changed
    crossing = met & ~(old.qualified & old_met)

    growth = new_params.growth(now)
    written = np.flatnonzero(write)
    # A slice at a time: the reasons' text and the rows handed to the driver are Python
    # objects, which for a million contacts at once would cost more memory than the rest.
    for start in range(0, len(written), WRITE_ROWS):
        rows = written[start : start + WRITE_ROWS]
        per_rule_now = computed.contributions[rows]
        per_rule_now[:, len(plan.fit_rules) :] /= growth
        reasons, named = _reasons(plan.rules, per_rule_now)
        _write_scores(
            plan, ids[rows], fit[rows], norm[rows], met[rows], old.row_id[rows], reasons, now
        )
        history_rows = np.flatnonzero(changed[rows])
        hist = rows[history_rows]
        _write_history(
            plan,
            ids[hist],
            fit[hist],
            engagement[hist],
            total[hist],
            band_of(total[hist], new_params),
            [named[i] for i in history_rows],
            now,
            cause,
        )
    pipeline.scores_changed(ids[changed].tolist())
    promoted = _promote(plan, ids[crossing].tolist(), now) if promote else []
    return Outcome(contacts=len(ids), changed=int(changed.sum()), promoted=promoted)


@dataclass
class _Old:
    exists: np.ndarray
    row_id: np.ndarray
    fit: np.ndarray
    engagement_norm: np.ndarray
    qualified: np.ndarray


def _old_scores(plan: Plan, ids: np.ndarray) -> _Old:
    n = len(ids)
    old = _Old(
        exists=np.zeros(n, dtype=bool),
        row_id=np.zeros(n, dtype=np.int64),
        fit=np.zeros(n),
        engagement_norm=np.zeros(n),
        qualified=np.zeros(n, dtype=bool),
    )
    columns = ["contact_id", "pk", "fit", "engagement_norm", "qualified"]

    def of(some: list[int]) -> QuerySet[Any]:
        return ContactScore.objects.filter(model_id=plan.model_id, contact_id__in=some)

    if n == 1:  # a new event: the query built once per model, reused with the contact's id
        built = _reusable_sql(
            (plan.model_id, "old"),
            lambda some, _at: of(some).values_list(*columns),
            int(ids[0]),
            dt.datetime.now(dt.UTC),
        )
        matrix = row_matrix(built, len(columns))
    elif n <= ID_CHUNK:
        matrix = _matrix(of(ids.tolist()), columns)
    else:
        matrix = _matrix(ContactScore.objects.filter(model_id=plan.model_id), columns)
    idx = _positions(ids, matrix[:, 0])
    known = idx >= 0
    idx, matrix = idx[known], matrix[known]
    old.exists[idx] = True
    old.row_id[idx] = matrix[:, 1].astype(np.int64)
    old.fit[idx] = matrix[:, 2]
    old.engagement_norm[idx] = matrix[:, 3]
    old.qualified[idx] = matrix[:, 4] > 0
    return old


def _rebased(params: Params, now: dt.datetime) -> Params:
    from dataclasses import replace

    return replace(params, epoch=now)


def needs_rebase(params: Params, now: dt.datetime) -> bool:
    return (now - params.epoch).total_seconds() / params.half_life_seconds > REBASE_HALF_LIVES


def _reasons(rules: Sequence[Rule], per_rule: np.ndarray) -> tuple[list[str], list[str]]:
    """Per contact, as JSON text: {rule id: points} kept on the score and [[rule name, points]]
    kept in the history, the largest few by size. Rows with the same number of reasons are
    formatted together by one %-format over the whole group (a loop per row would cost
    seconds per million contacts)."""
    n = len(per_rule)
    keep = min(REASONS_KEPT, per_rule.shape[1])
    as_json = np.full(n, "{}", dtype=object)
    named = np.full(n, "[]", dtype=object)
    if not keep or not n:
        return as_json.tolist(), named.tolist()
    order = np.argsort(-np.abs(per_rule), axis=1, kind="stable")[:, :keep]
    points = np.round(np.take_along_axis(per_rule, order, axis=1), 2)
    counts = (points != 0).sum(axis=1)
    rule_ids = np.array([r.id for r in rules], dtype=object)
    names = np.array([json.dumps(r.name, ensure_ascii=False) for r in rules], dtype=object)
    for count in range(1, keep + 1):
        rows = np.flatnonzero(counts == count)
        if not len(rows):
            continue
        values = points[rows, :count].astype(object)
        for labels, target, pattern, wrap in (
            (rule_ids, as_json, '"%d": %.2f', "{%s}"),
            (names, named, "[%s, %.2f]", "[%s]"),
        ):
            pairs = np.empty((len(rows), 2 * count), dtype=object)
            pairs[:, 0::2] = labels[order[rows, :count]]
            pairs[:, 1::2] = values
            template = wrap % ", ".join([pattern] * count) + "\n"
            text = (template * len(rows)) % tuple(pairs.ravel().tolist())
            target[rows] = text.split("\n")[:-1]
    return as_json.tolist(), named.tolist()


def _json_placeholder() -> str:
    return "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"


def _write_scores(
    plan: Plan,
    contact_ids: np.ndarray,
    fit: np.ndarray,
    norm: np.ndarray,
    met: np.ndarray,
    row_ids: np.ndarray,
    reasons: list[str],
    now: dt.datetime,
) -> None:
    """Update the rows that exist and insert the others, with executemany: the ORM would build
    a model object per row, which a million-contact rescore cannot afford."""
    quote = connection.ops.quote_name
    table = quote(ContactScore._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    json_ph = _json_placeholder()
    existing = row_ids > 0
    with connection.cursor() as cursor:
        if existing.any():
            cursor.executemany(
                f"UPDATE {table} SET {quote('fit')} = %s, {quote('engagement_norm')} = %s, "
                f"{quote('reasons')} = {json_ph}, {quote('qualified')} = %s, "
                f"{quote('computed_at')} = %s WHERE {quote('id')} = %s",
                list(
                    zip(
                        fit[existing].tolist(),
                        norm[existing].tolist(),
                        [r for r, e in zip(reasons, existing, strict=True) if e],
                        met[existing].tolist(),
                        [at] * int(existing.sum()),
                        row_ids[existing].tolist(),
                        strict=True,
                    )
                ),
            )
        fresh = ~existing
        if fresh.any():
            cursor.executemany(
                f"INSERT INTO {table} ({quote('contact_id')}, {quote('model_id')}, {quote('fit')}, "
                f"{quote('engagement_norm')}, {quote('reasons')}, {quote('qualified')}, "
                f"{quote('computed_at')}) VALUES (%s, %s, %s, %s, {json_ph}, %s, %s)",
                list(
                    zip(
                        contact_ids[fresh].tolist(),
                        [plan.model_id] * int(fresh.sum()),
                        fit[fresh].tolist(),
                        norm[fresh].tolist(),
                        [r for r, f in zip(reasons, fresh, strict=True) if f],
                        met[fresh].tolist(),
                        [at] * int(fresh.sum()),
                        strict=True,
                    )
                ),
            )


def _write_history(
    plan: Plan,
    contact_ids: np.ndarray,
    fit: np.ndarray,
    engagement: np.ndarray,
    total: np.ndarray,
    bands: np.ndarray,
    named: list[str],
    now: dt.datetime,
    cause: str,
) -> None:
    if not len(contact_ids):
        return
    quote = connection.ops.quote_name
    table = quote(ScoreHistory._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    columns = ", ".join(
        quote(c)
        for c in (
            "contact_id",
            "model_id",
            "at",
            "fit",
            "engagement",
            "total",
            "band",
            "reasons",
            "cause",
        )
    )
    count = len(contact_ids)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, "
            f"{_json_placeholder()}, %s)",
            list(
                zip(
                    contact_ids.tolist(),
                    [plan.model_id] * count,
                    [at] * count,
                    np.round(fit, 4).tolist(),
                    np.round(engagement, 4).tolist(),
                    np.round(total, 4).tolist(),
                    bands.tolist(),
                    named,
                    [cause[:32]] * count,
                    strict=True,
                )
            ),
        )


def _promote(plan: Plan, contact_ids: list[int], now: dt.datetime) -> list[int]:
    """Move the contacts that just met the MQL rule, if still subscribers or leads, to ``mql``."""
    if not contact_ids:
        return []
    return crm.move_contacts(
        LifecycleStage.MQL,
        contact_ids,
        cause=TransitionCause.RULE,
        at=now,
        note=f"scoring model {plan.key}",
        only_from=PROMOTABLE,
    )


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start : start + ID_CHUNK]


# -- the two entry points -----------------------------------------------------------------------


def rescore_model(
    model: ScoringModel,
    *,
    now: dt.datetime | None = None,
    cause: str = "rules",
    promote: bool = True,
) -> Outcome:
    """Recompute every contact under ``model``; nothing is written unless all of it is."""
    now = now or timezone.now()
    plan = plan_for(model)
    computed = compute_all(plan, now)
    with transaction.atomic():
        return save(computed, cause=cause, rebase=needs_rebase(plan.params, now), promote=promote)


def rescore_contacts(
    contact_ids: Iterable[int], *, now: dt.datetime | None = None, cause: str = "update"
) -> dict[str, Outcome]:
    """Recompute these contacts under every enabled model."""
    now = now or timezone.now()
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    plans = enabled_plans()
    outcomes = {plan.key: Outcome() for plan in plans}
    for chunk in _chunks(ids):
        computed = [compute_some(plan, chunk, now) for plan in plans]
        with no_checkpoint_at_commit(), transaction.atomic():  # every model's rows at once
            saved = [save(c, cause=cause) for c in computed]
        for plan, outcome in zip(plans, saved, strict=True):
            total = outcomes[plan.key]
            total.contacts += outcome.contacts
            total.changed += outcome.changed
            total.promoted += outcome.promoted
    return outcomes
