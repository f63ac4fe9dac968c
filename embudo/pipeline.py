"""The reaction pipeline: what Embudo does, and in which order, when a business moment happens.

Actions tell this module what changed (:func:`events_recorded`, :func:`contacts_changed`,
:func:`stage_changed`, …). The moments of one transaction are gathered and, once it commits,
run through :data:`REACTIONS` in the order written there:

    rescore → personas → predictions → handoff of new MQLs → first touch of the SLA

A reaction is told only what it has not seen yet in this run. Moments that a reaction causes
(a rescore that makes an MQL, a handoff that gives the lead an owner) join the same run: the
reactions after it see them at once, and one before it runs again only for contacts whose
change it reads (an owner change does not rescore unless a scoring rule reads the owner). So
one moment never runs a contact's chain twice. Each reaction is idempotent; one that fails is
logged with its name, and neither the write that caused it nor the other reactions are lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

#: In ``Moments.changed``: any field may have changed (an import, a merge).
ANY_FIELD = "*"
#: After this many rounds a run stops, even if its reactions keep causing moments.
MAX_ROUNDS = 4


# -- moments ------------------------------------------------------------------------------------


@dataclass
class Moments:
    """What happened, gathered over one transaction or one reaction: sets of ids by kind."""

    #: event type → contacts with new events of that type
    events: dict[str, set[int]] = field(default_factory=dict)
    #: contacts created
    created: set[int] = field(default_factory=set)
    #: contact → the names of its fields that changed (``ANY_FIELD``: any of them)
    changed: dict[int, set[str]] = field(default_factory=dict)
    #: lifecycle stage → contacts that just moved into it
    stages: dict[str, set[int]] = field(default_factory=dict)
    #: contacts whose score (or band) under some model changed
    scores: set[int] = field(default_factory=set)
    #: contacts whose persona changed
    personas: set[int] = field(default_factory=set)
    #: static list → contacts added to it
    joined: dict[int, set[int]] = field(default_factory=dict)
    #: static list → contacts taken out of it
    left: dict[int, set[int]] = field(default_factory=dict)
    #: companies whose fields changed (their contacts' fit may follow)
    companies: set[int] = field(default_factory=set)
    #: activities logged (calls, e-mails, meetings…)
    activities: set[int] = field(default_factory=set)
    #: sales' feedback given (ids of the feedback rows)
    feedback: set[int] = field(default_factory=set)
    #: deals whose pipeline stage changed (created, moved, won or lost)
    deals: set[int] = field(default_factory=set)
    #: contacts written by an import or a historical event load: history, not news
    imported: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def __ior__(self, other: Moments) -> Moments:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, set):
                mine |= theirs
            else:
                for key, ids in theirs.items():
                    mine.setdefault(key, set()).update(ids)
        return self

    def __sub__(self, other: Moments) -> Moments:
        """What this holds that ``other`` does not."""
        left = Moments()
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, set):
                setattr(left, f.name, mine - theirs)
            else:
                rest = {key: ids - theirs.get(key, set()) for key, ids in mine.items()}
                setattr(left, f.name, {key: ids for key, ids in rest.items() if ids})
        return left

    @property
    def event_contacts(self) -> set[int]:
        return set().union(*self.events.values())

    @property
    def moved_contacts(self) -> set[int]:
        return set().union(*self.stages.values())

    def contacts_touching(self, names: Iterable[str]) -> set[int]:
        """The contacts for whom these moments may change the value of any of these fields of
        the condition language (``owner``, ``company.industry``, ``property.plan``, ``event``,
        ``score.main.total``, …): those a rule or a persona reading them must look at again."""
        reads = _Reads(names)
        ids = set(self.created)
        if reads("event"):
            ids |= self.event_contacts
        if reads("lifecycle_stage", "lifecycle_stage_changed_at", "updated_at"):
            ids |= self.moved_contacts
        if reads("score."):
            ids |= self.scores
        if reads("persona"):
            ids |= self.personas
        anything = reads("updated_at")  # every change to a contact moves it
        verdicts: dict[frozenset[str], bool] = {}
        for contact_id, changed in self.changed.items():
            key = frozenset(changed)
            if key not in verdicts:
                verdicts[key] = anything or ANY_FIELD in key or any(map(reads.column, key))
            if verdicts[key]:
                ids.add(contact_id)
        if self.companies and reads("company."):
            from embudo.crm import queries as crm_queries

            ids |= crm_queries.contact_ids_of_companies(self.companies)
        return ids


# A contact's column → the fields of the condition language that read it (a name ending in "."
# is a family: "company." is every company field). Other columns are read by their own name.
_READ_AS: Mapping[str, tuple[str, ...]] = {
    "owner_id": ("owner",),
    "company_id": ("company.",),
    "properties": ("property.",),
    "email": ("email", "email_domain"),
    "lifecycle_stage": ("lifecycle_stage", "lifecycle_stage_changed_at"),
}


class _Reads:
    """Whether a set of condition-language fields reads a name (or a family of names)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def __call__(self, *wanted: str) -> bool:
        for name in wanted:
            if name in self.names:
                return True
            if name.endswith(".") and any(n.startswith(name) for n in self.names):
                return True
        return False

    def column(self, column: str) -> bool:
        return self(*_READ_AS.get(column, (column,)))


# -- telling the pipeline what happened ---------------------------------------------------------


def events_recorded(by_type: Mapping[str, Iterable[int]], *, imported: bool = False) -> None:
    """New events, by type, for these contacts (``imported``: history loaded in bulk)."""
    events = {kind: set(ids) for kind, ids in by_type.items() if ids}
    moments = Moments(events=events)
    if imported:
        moments.imported = moments.event_contacts
    emit(moments)


def contacts_created(contact_ids: Iterable[int]) -> None:
    emit(Moments(created=set(contact_ids)))


def contacts_changed(contact_ids: Iterable[int], changed: Iterable[str]) -> None:
    """These contacts' fields named in ``changed`` (column names, or ``ANY_FIELD``) changed."""
    names = set(changed)
    if names:
        emit(Moments(changed={contact_id: set(names) for contact_id in contact_ids}))


def contacts_imported(contact_ids: Iterable[int]) -> None:
    """An import created or changed these contacts, any of their fields."""
    ids = set(contact_ids)
    emit(Moments(changed={i: {ANY_FIELD} for i in ids}, imported=set(ids)))


def stage_changed(stage: str, contact_ids: Iterable[int], *, imported: bool = False) -> None:
    ids = set(contact_ids)
    emit(Moments(stages={stage: ids} if ids else {}, imported=ids if imported else set()))


def scores_changed(contact_ids: Iterable[int]) -> None:
    emit(Moments(scores=set(contact_ids)))


def personas_changed(contact_ids: Iterable[int]) -> None:
    emit(Moments(personas=set(contact_ids)))


def list_changed(segment_id: int, *, joined: Iterable[int] = (), left: Iterable[int] = ()) -> None:
    """Contacts added to (``joined``) or taken out of (``left``) a static list."""
    added, removed = set(joined), set(left)
    emit(
        Moments(
            joined={segment_id: added} if added else {},
            left={segment_id: removed} if removed else {},
        )
    )


def companies_changed(company_ids: Iterable[int]) -> None:
    emit(Moments(companies=set(company_ids)))


def activities_logged(activity_ids: Iterable[int]) -> None:
    emit(Moments(activities=set(activity_ids)))


def feedback_given(feedback_ids: Iterable[int]) -> None:
    emit(Moments(feedback=set(feedback_ids)))


def deal_stage_changed(deal_ids: Iterable[int]) -> None:
    emit(Moments(deals=set(deal_ids)))


def emit(moments: Moments) -> None:
    """Hand ``moments`` to the pipeline once the current transaction commits (at once when
    there is none). Moments of a savepoint that rolls back are dropped with it."""
    if not moments:
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _deliver(moments)
        return
    # Each moment rides on its own commit callback, so Django drops it with a savepoint rolled
    # back; the last delivery registered hands what survived to the pipeline at once.
    transaction.on_commit(_Keep(moments))
    _deliver_after(connection)


# -- running the reactions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Reaction:
    """One app's reaction to moments: ``react(moments)`` gets what it has not seen yet."""

    name: str
    react: Callable[[Moments], None]


_local = threading.local()


def _committed() -> Moments:
    moments: Moments | None = getattr(_local, "committed", None)
    if moments is None:
        moments = _local.committed = Moments()
    return moments


class _Keep:
    """A commit callback: these moments were committed."""

    def __init__(self, moments: Moments) -> None:
        self.moments = moments

    def __call__(self) -> None:
        _committed().__ior__(self.moments)


class _Delivery:
    """A commit callback that hands the transaction's committed moments to the pipeline, if
    no later one was registered (that one will, after the moments registered since)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.__qualname__ = "embudo.pipeline delivery"  # how Django names a failing callback

    def __call__(self) -> None:
        if getattr(self.connection, "_embudo_delivery", None) is not self:
            return
        self.connection._embudo_delivery = None
        moments, _local.committed = _committed(), None
        _deliver(moments)


def _deliver_after(connection: Any) -> None:
    """Register a delivery after the moments' callbacks registered so far.

    Django keeps a transaction's commit callbacks as (savepoint ids, callback, robust) in
    ``connection.run_on_commit`` and drops those of a savepoint that rolls back; the delivery
    goes in with no savepoint, so an inner rollback (which drops its moments) never drops the
    delivery of the moments around it."""
    delivery = _Delivery(connection)
    connection._embudo_delivery = delivery
    connection.run_on_commit.append((set(), delivery, True))


def _adopt(connection: Any, mark: int) -> Moments:
    """The moments a reaction's writes left waiting for a commit that cannot come, because the
    run is itself inside a transaction (a test's, or a task run at once inside a request):
    taken from the queue into the run, as if those writes had committed."""
    hooks = connection.run_on_commit
    adopted = Moments()
    kept = hooks[:mark]
    for hook in hooks[mark:]:
        callback = hook[1]
        if isinstance(callback, _Keep):
            adopted |= callback.moments
        elif not isinstance(callback, _Delivery):
            kept.append(hook)
    hooks[:] = kept
    return adopted


def _deliver(moments: Moments) -> None:
    gathering: Moments | None = getattr(_local, "gathering", None)
    run: _Run | None = getattr(_local, "run", None)
    if gathering is not None:
        gathering |= moments
    elif run is not None:  # caused by a reaction: the run in progress takes them
        run.caused |= moments
    elif moments:
        _Run().go(moments)


@contextmanager
def gathered() -> Iterator[Moments]:
    """Keep the moments committed inside this block from running: they gather in the yielded
    ``Moments``, for the caller to :func:`emit` once it is ready (a writer that commits while
    holding a lock others wait for hands them on after letting go of it)."""
    outer: Moments | None = getattr(_local, "gathering", None)
    moments = _local.gathering = Moments()
    try:
        yield moments
    finally:
        _local.gathering = outer


@dataclass
class _Run:
    caused: Moments = field(default_factory=Moments)

    def go(self, moments: Moments) -> None:
        connection = transaction.get_connection()
        _local.run = self
        try:
            seen = {reaction.name: Moments() for reaction in REACTIONS}
            pending = moments
            for _round in range(MAX_ROUNDS):
                for reaction in REACTIONS:
                    new = pending - seen[reaction.name]
                    if not new:
                        continue
                    seen[reaction.name] |= new
                    inside = connection.in_atomic_block
                    mark = len(connection.run_on_commit)
                    try:
                        reaction.react(new)
                    except Exception:
                        logger.exception("the %s reaction failed", reaction.name)
                    if inside:
                        self.caused |= _adopt(connection, mark)
                    pending |= self.caused
                    self.caused = Moments()
                if not any(pending - seen[reaction.name] for reaction in REACTIONS):
                    return
            logger.warning("reactions still causing moments after %d rounds", MAX_ROUNDS)
        finally:
            _local.run = None


# -- the reactions, in order --------------------------------------------------------------------


def _rescore(moments: Moments) -> None:
    """Scoring: contacts whose events or fields a rule reads get their scores recomputed."""
    from embudo.scoring import actions as scoring

    reads = scoring.condition_fields()
    if not reads:
        return
    ids = moments.contacts_touching(reads)
    imported = ids & moments.imported
    by_event = (ids & moments.event_contacts) - imported
    for contacts, cause in (
        (by_event, "event"),
        (imported, "import"),
        (ids - imported - by_event, "contact"),
    ):
        scoring.rescore_contacts(contacts, cause=cause)


def _assign_personas(moments: Moments) -> None:
    """Segments: contacts whose change a persona reads get their persona again."""
    from embudo.segments import actions as segments

    reads = segments.persona_fields()
    if reads:
        ids = moments.contacts_touching(reads)
        if ids:
            segments.assign_personas(ids)


def _predict(moments: Moments) -> None:
    """Predictive: contacts whose features changed are predicted again; new outcomes (customers,
    disqualified, sales' rejections) count towards a retrain."""
    from embudo.predictive import actions as predictive

    if not predictive.has_active_model():
        return
    ids = moments.contacts_touching(predictive.FEATURE_FIELDS) | moments.moved_contacts
    predictive.predict_later(ids)
    outcomes = any(stage in moments.stages for stage in predictive.OUTCOME_STAGES)
    if outcomes or moments.feedback or moments.imported:
        predictive.retrain_if_due()


def _hand_off(moments: Moments) -> None:
    """Handoff: new MQLs go to sales at once (routing, owner, SLA clocks)."""
    from embudo.handoff import actions as handoff

    mqls = moments.stages.get("mql")
    if mqls:
        handoff.hand_off(mqls)


def _first_touch(moments: Moments) -> None:
    """Handoff: a call, e-mail or meeting logged, or a lead status of attempting or later,
    stops the first-touch clock."""
    from embudo.handoff import actions as handoff

    if moments.activities:
        handoff.touched_by_activities(moments.activities)
    statuses = [i for i, names in moments.changed.items() if names & {"lead_status", ANY_FIELD}]
    if statuses:
        handoff.touched_by_status(statuses)


#: What runs when something happens, in this order. Workflows come next, last.
REACTIONS: tuple[Reaction, ...] = (
    Reaction("rescore", _rescore),
    Reaction("personas", _assign_personas),
    Reaction("predictions", _predict),
    Reaction("handoff", _hand_off),
    Reaction("first touch", _first_touch),
)


# -- merging ------------------------------------------------------------------------------------


def before_merge(primary: Any, duplicate: Any) -> None:
    """Inside a merge, before the duplicate's rows move to the primary: apps that keep one row
    per contact drop the duplicate's, so the move cannot collide (the merged contact is
    recomputed once the merge commits)."""
    from embudo.automation import consent
    from embudo.predictive import actions as predictive
    from embudo.scoring import actions as scoring
    from embudo.segments import actions as segments

    scoring.before_merge(primary, duplicate)
    segments.before_merge(primary, duplicate)
    predictive.before_merge(primary, duplicate)
    consent.before_merge(primary, duplicate)
