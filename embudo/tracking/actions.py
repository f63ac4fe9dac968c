"""Every write of the capture app: recording events, stitching visitors to contacts, form
submissions, and the capture settings (site keys, forms, channel rules).

:func:`record_events` is the one door every event comes in through — the API, the snippet, the
pixel, forms and the historical import — so they all get the same validation, idempotency,
identity stitching and touchpoints.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from embudo import pipeline
from embudo.accounts.actions import record_audit
from embudo.crm import actions as crm
from embudo.crm.models import (
    Contact,
    ObjectType,
    PropertyDefinition,
    TransitionCause,
)
from embudo.db.bulk import Dialect
from embudo.db.writer import GroupCommit, Ticket, Turn, ingest_turn
from embudo.errors import ValidationFailed
from embudo.tracking.channels import (
    DEFAULT_RULES,
    IMPLIED_MEDIUM,
    RULEBOOK,
    compile_pattern,
    has_click_id,
    is_external_referrer,
    visit_from,
)
from embudo.tracking.events import FIELDS, Invalid, ParsedEvent, parse_event
from embudo.tracking.models import (
    Campaign,
    Channel,
    ChannelRule,
    Event,
    EventSource,
    Form,
    SiteKey,
    Touchpoint,
    Visitor,
)
from embudo.tracking.store import contacts_by, insert_events, insert_touchpoints, touch_visitors

MAX_BATCH = 1000
# How many events concurrent callers (``grouped``) may store in one shared transaction.
GROUP_LIMIT = 2 * MAX_BATCH
# Past this many first-seen emails in one batch, contacts are created in bulk.
BULK_CONTACTS = 20
# Events that follow a visit rather than start one: their URL repeats the landing page's UTM.
NOT_A_VISIT = frozenset(("identify", "form_submit", "email_open"))


@dataclass
class IngestResult:
    """What became of a batch: counts, and why each refused item was refused."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Ids (32 hex digits) of the events stored or already there, in the order given.
    event_ids: list[str] = field(default_factory=list)
    contact_ids: set[int] = field(default_factory=set)
    # What the pipeline hears once the events are stored: the contacts of the new events, by
    # type, and what storing them changed besides.
    moments: pipeline.Moments = field(default_factory=pipeline.Moments)

    def reject(self, index: int, raw: Any, reason: str, field_name: str = "") -> None:
        self.rejected += 1
        error: dict[str, Any] = {"index": index, "reason": reason}
        if field_name:
            error["field"] = field_name
        if isinstance(raw, dict) and isinstance(raw.get("event_id"), str):
            error["event_id"] = raw["event_id"]
        self.errors.append(error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "errors": self.errors,
        }


def record_events(
    items: Sequence[Any],
    *,
    source: str,
    actor: Any = None,
    allowed: frozenset[str] = FIELDS,
    now: dt.datetime | None = None,
    first_touch: bool = True,
    grouped: bool = False,
) -> IngestResult:
    """Validate each item on its own and store the valid ones in one transaction.

    A retried event (same ``event_id``) is counted as a duplicate and stores nothing new. Items
    naming a contact by an unknown email create that contact; by an unknown id or external id,
    they are refused. Returns after the transaction has committed.

    ``grouped=True`` (the events API) lets a request share its transaction with the
    requests other threads of this process are storing at the same moment (group commit, see
    :class:`~embudo.db.writer.GroupCommit`): one commit for many callers, each answered with
    its own counts once that commit is done. ``first_touch=False`` leaves contacts' original
    source to the caller (an import, whose rows come in any order, sets it once from the whole
    history at the end).
    """
    if source not in EventSource.values:
        raise ValueError(f"unknown event source {source!r}")
    now = now or timezone.now()
    result = IngestResult()
    parsed: list[ParsedEvent] = []
    for index, raw in enumerate(items):
        try:
            parsed.append(parse_event(raw, index, now, allowed=allowed))
        except Invalid as invalid:
            result.reject(index, raw, invalid.reason, invalid.field)
    if parsed:
        work = _Pending(parsed, now, result, source, actor, first_touch)
        if grouped and not connection.in_atomic_block:
            key = (source, getattr(actor, "pk", actor), first_touch)
            _GROUP.run(work, key, len(parsed))  # the group's leader tells the pipeline
        else:

            def store() -> None:
                # Gathered, so the reactions run after the write turn is handed on.
                with (
                    pipeline.gathered() as moments,
                    ingest_turn(len(parsed)),
                    transaction.atomic(),
                ):
                    _store([work])
                result.moments |= moments

            retrying_if_locked(store)
            pipeline.emit(result.moments)
    if result.errors:
        result.errors.sort(key=lambda error: error["index"])
    return result


@dataclass(eq=False)
class _Pending:
    """One caller's validated events on their way into the database, and its result."""

    parsed: list[ParsedEvent]
    now: dt.datetime
    result: IngestResult
    source: str
    actor: Any
    first_touch: bool
    # What validation alone decided: where a retried attempt starts from.
    validated: tuple[int, list[dict[str, Any]]] = (0, [])

    def __post_init__(self) -> None:
        self.validated = (self.result.rejected, list(self.result.errors))

    def restart(self) -> None:
        result = self.result
        result.rejected, result.errors = self.validated[0], list(self.validated[1])
        result.accepted = result.duplicate = 0
        result.contact_ids = set()
        result.event_ids = []
        result.moments = pipeline.Moments()


def _write_group(tickets: list[Ticket[_Pending]], turn: Turn) -> None:
    """Store the callers' events in one transaction; should that fail, each caller's alone, so
    one caller's failure is that caller's only and nobody else's events go unstored."""
    works = [ticket.work for ticket in tickets]
    turn.events = sum(len(work.parsed) for work in works)

    def store(batch: list[_Pending]) -> None:
        # Gathered: the pipeline runs once the turn is handed on (see _after_group).
        with pipeline.gathered() as moments, transaction.atomic():
            _store(batch)
        batch[0].result.moments |= moments

    try:
        retrying_if_locked(lambda: store(works))
    except Exception:
        if len(tickets) == 1:
            raise
        for ticket in tickets:
            try:
                retrying_if_locked(partial(store, [ticket.work]))
            except Exception as error:  # this caller is told; the others go on
                ticket.error = error


def _after_group(tickets: list[Ticket[_Pending]]) -> None:
    """Tell the pipeline once what the group's committed callers stored: its reactions work
    set-based, so one run serves the whole group."""
    moments = pipeline.Moments()
    for ticket in tickets:
        moments |= ticket.work.result.moments
    pipeline.emit(moments)


_GROUP: GroupCommit[_Pending] = GroupCommit(_write_group, limit=GROUP_LIMIT, after=_after_group)


def _store(batch: list[_Pending]) -> None:
    """Store the events of ``batch`` (callers sharing source, actor and ``first_touch``) in the
    open transaction, filling each caller's result."""
    dialect = Dialect.current()
    head = batch[0]
    cause = TransitionCause.IMPORT if head.source == EventSource.IMPORT else TransitionCause.API
    for work in batch:
        work.restart()
    owners = [work for work in batch for _ in work.parsed]
    parsed = [event for work in batch for event in work.parsed]
    contacts = _resolve_contacts(dialect, parsed, owners, head.actor, cause)
    kept = [
        (event, contact, owner)
        for event, contact, owner in zip(parsed, contacts, owners, strict=True)
        if contact
    ]
    now = max(work.now for work in batch)

    # Visitors: note them, learn who they are, and link those this batch identifies.
    visitor_ids = {event.visitor_id for event, _, _ in kept if event.visitor_id}
    links = touch_visitors(dialect, visitor_ids, now) if visitor_ids else {}
    identified: dict[str, tuple[dt.datetime, int]] = {}
    for event, contact, _ in kept:
        if event.visitor_id and contact > 0:
            seen = identified.get(event.visitor_id)
            if seen is None or event.occurred_at >= seen[0]:
                identified[event.visitor_id] = (event.occurred_at, contact)
    relinked = [
        (visitor_id, contact_id)
        for visitor_id, (_at, contact_id) in sorted(identified.items())
        if links.get(visitor_id) != contact_id
    ]
    _link_visitors(dialect, relinked, now)
    links.update(relinked)
    stitched_contacts = {contact_id for _visitor, contact_id in relinked}

    uuid_of, dt_of, json_of = dialect.uuid, dialect.datetime, dialect.json
    received = {id(work): dt_of(work.now) for work in batch}
    rows = []
    for event, contact, owner in kept:
        contact_id = contact if contact > 0 else links.get(event.visitor_id)
        rows.append(
            (
                uuid_of(event.id),
                event.type,
                contact_id,
                event.visitor_id,
                json_of(event.properties),
                event.url,
                event.referrer,
                event.utm_source,
                event.utm_medium,
                event.utm_campaign,
                event.utm_term,
                event.utm_content,
                dt_of(event.occurred_at),
                received[id(owner)],
                owner.source,
            )
        )
        if contact_id:
            owner.result.contact_ids.add(contact_id)
    inserted = insert_events(dialect, rows)
    # The same id twice (in one request or two sharing the transaction) is stored once: the
    # first to name it has it accepted, any later one is a duplicate.
    new: list[tuple[ParsedEvent, int | None]] = []
    for (event, _, owner), row in zip(kept, rows, strict=True):
        owner.result.event_ids.append(event.id)
        if event.id in inserted:
            inserted.discard(event.id)
            owner.result.accepted += 1
            new.append((event, row[2]))
            if row[2]:
                owner.result.moments.events.setdefault(event.type, set()).add(row[2])
        else:
            owner.result.duplicate += 1
    if head.source == EventSource.IMPORT:
        for work in batch:
            work.result.moments.imported |= work.result.moments.event_contacts

    touched = _record_touchpoints(dialect, new)
    if head.first_touch:
        set_first_touch(touched | stitched_contacts)


LOCK_RETRIES = 5
T = TypeVar("T")


def retrying_if_locked(write: Callable[[], T]) -> T:
    """Run a write transaction, and again if SQLite refused it as locked.

    A refused transaction wrote nothing, and events are idempotent by id, so trying again is
    safe. SQLite waits for the lock up to its busy timeout; this covers what that cannot: the
    shared in-memory database of the test server (which fails at once rather than waiting) and a
    timeout under an extreme burst. Inside an outer transaction the caller decides instead.
    """
    for attempt in range(LOCK_RETRIES):
        try:
            return write()
        except OperationalError as error:
            if (
                connection.in_atomic_block
                or "locked" not in str(error)
                or attempt == LOCK_RETRIES - 1
            ):
                raise
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


# Marks, in the list _resolve_contacts returns, an item that was refused (0 is never a pk).
_REFUSED = 0
_ANONYMOUS = -1


def _resolve_contacts(
    dialect: Dialect,
    parsed: list[ParsedEvent],
    owners: list[_Pending],
    actor: Any,
    cause: str,
) -> list[int]:
    """Each event's contact pk, ``_ANONYMOUS`` for visitor-only events, ``_REFUSED`` (with a
    reason recorded in the event's owner's result) for events naming a contact that does not
    exist."""
    ids = {e.contact_id for e in parsed if e.contact_id is not None}
    emails = {e.email for e in parsed if e.email is not None}
    externals = {e.external_id for e in parsed if e.external_id is not None}
    if not (ids or emails or externals):
        return [_ANONYMOUS] * len(parsed)
    known_ids = contacts_by(dialect, "id", ids) if ids else {}
    by_email = contacts_by(dialect, "email", emails) if emails else {}
    by_external = contacts_by(dialect, "external_id", externals) if externals else {}
    failures: dict[str, str] = {}
    new_emails = emails - by_email.keys()
    if new_emails:
        traits = {e.email: e.traits for e in reversed(parsed) if e.email in new_emails}
        if len(new_emails) > BULK_CONTACTS:
            by_email.update(_create_contacts_in_bulk(new_emails, traits, cause, failures))
        for email in sorted(new_emails - by_email.keys() - failures.keys()):
            try:
                by_email[email] = _create_contact(email, traits.get(email) or {}, actor, cause)
            except ValidationFailed as failed:
                failures[email] = "; ".join(m for msgs in failed.errors.values() for m in msgs)

    contacts: list[int] = []
    for event, owner in zip(parsed, owners, strict=True):
        named: list[int] = []
        reason = ""
        if event.contact_id is not None:
            if event.contact_id in known_ids:
                named.append(event.contact_id)
            else:
                reason = f"no contact with id {event.contact_id}"
        if not reason and event.external_id is not None:
            pk = by_external.get(event.external_id)
            if pk is None:
                reason = f"no contact with external id {event.external_id!r}"
            else:
                named.append(pk)
        if not reason and event.email is not None:
            pk = by_email.get(event.email)
            if pk is None:
                reason = failures.get(event.email) or f"no contact with email {event.email}"
            else:
                named.append(pk)
        if not reason and len(set(named)) > 1:
            reason = "contact_id, external_id and email name different contacts"
        if reason:
            owner.result.reject(
                event.index, {"event_id": str(uuid.UUID(event.id))}, reason, "contact"
            )
            contacts.append(_REFUSED)
        else:
            contacts.append(named[0] if named else _ANONYMOUS)
    return contacts


def _create_contact(email: str, traits: Mapping[str, str], actor: Any, cause: str) -> int:
    """A contact for an email seen for the first time, through the CRM's own action (so it
    gets its first lifecycle transition and audit entry). A contact created by a concurrent
    batch in the meantime is found instead."""
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed.one("email", f"{email!r} is not a valid email address") from None
    try:
        with transaction.atomic():
            return crm.create_contact({"email": email, **traits}, actor=actor, cause=cause).pk
    except ValidationFailed:
        existing = Contact.objects.filter(email=email).values_list("pk", flat=True).first()
        if existing is None:
            raise
        return existing


def _create_contacts_in_bulk(
    emails: set[str], traits: Mapping[str, Mapping[str, str]], cause: str, failures: dict[str, str]
) -> dict[str, int]:
    """Contacts for many first-seen emails at once (an import's history), through the CRM's
    bulk action.

    The CRM's per-contact action costs a handful of queries per contact; a year of history can
    name tens of thousands. Emails that fail validation are left in ``failures``; a clash with a
    contact created meanwhile leaves the email to the per-contact path, which finds it.
    """
    valid: list[str] = []
    for email in sorted(emails):
        try:
            validate_email(email)
        except DjangoValidationError:
            failures[email] = f"{email!r} is not a valid email address"
            continue
        valid.append(email)
    try:
        created = crm.create_contacts(
            [{"email": email, **(traits.get(email) or {})} for email in valid], cause=cause
        )
    except IntegrityError:
        return {}
    return {contact.email: contact.pk for contact in created if contact.email}


def _link_visitors(dialect: Dialect, links: list[tuple[str, int]], now: dt.datetime) -> None:
    """Point each visitor at its contact and move its anonymous history there: three batched
    UPDATEs (each row found through the anonymous-visitor indexes), however many visitors."""
    if not links:
        return
    when = dialect.datetime(now)
    visitor_table = dialect.quote(Visitor._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {visitor_table} SET contact_id = %s, identified_at = %s WHERE id = %s",
            [(contact_id, when, visitor_id) for visitor_id, contact_id in links],
        )
        for model in (Event, Touchpoint):
            table = dialect.quote(model._meta.db_table)
            cursor.executemany(
                f"UPDATE {table} SET contact_id = %s WHERE visitor_id = %s AND contact_id IS NULL",
                [(contact_id, visitor_id) for visitor_id, contact_id in links],
            )


def identify_visitor(visitor_id: str, contact: Contact) -> int:
    """Attach a visitor (and every anonymous event and touchpoint it made) to a contact.

    Returns how many anonymous events moved to the contact.
    """
    now = timezone.now()
    with transaction.atomic():
        touch_visitors(Dialect.current(), [visitor_id], now)
        moved = Event.objects.filter(visitor_id=visitor_id, contact__isnull=True).count()
        _link_visitors(Dialect.current(), [(visitor_id, contact.pk)], now)
        set_first_touch({contact.pk})
    return moved


def _has_visit_signal(event: ParsedEvent) -> bool:
    if event.new_session:
        return True
    if event.type in NOT_A_VISIT:
        return False
    return bool(
        event.utm_source
        or event.utm_medium
        or event.utm_campaign
        or has_click_id(event.url)
        or is_external_referrer(event.url, event.referrer)
    )


def _record_touchpoints(dialect: Dialect, events: list[tuple[ParsedEvent, int | None]]) -> set[int]:
    """A touchpoint for each new event that starts a visit; returns the contacts touched."""
    visits = []
    for event, contact_id in events:
        if not _has_visit_signal(event):
            continue
        visit = visit_from(
            event.url,
            event.referrer,
            event.utm_source,
            event.utm_medium,
            event.utm_campaign,
            event.utm_term,
            event.utm_content,
        )
        visits.append((event, contact_id, visit, RULEBOOK.classify(visit)))
    if not visits:
        return set()
    campaigns = _campaign_ids({v.campaign: (v.source, v.medium) for _, _, v, _ in visits})
    insert_touchpoints(
        dialect,
        [
            (
                contact_id,
                event.visitor_id,
                channel,
                (visit.source or "(direct)")[:255],
                (visit.medium or IMPLIED_MEDIUM.get(channel, ""))[:255],
                campaigns.get(visit.campaign),
                visit.term[:255],
                visit.content[:255],
                event.url,
                dialect.datetime(event.occurred_at),
                dialect.uuid(event.id),
            )
            for event, contact_id, visit, channel in visits
        ],
    )
    return {contact_id for _, contact_id, _, _ in visits if contact_id}


def _campaign_ids(first_seen: Mapping[str, tuple[str, str]]) -> dict[str, int]:
    """The Campaign id of each name, creating those seen for the first time."""
    names = [name for name in first_seen if name]
    if not names:
        return {}
    known = dict(Campaign.objects.filter(name__in=names).values_list("name", "pk"))
    missing = [name for name in names if name not in known]
    if missing:
        Campaign.objects.bulk_create(
            [
                Campaign(
                    name=name, first_source=first_seen[name][0], first_medium=first_seen[name][1]
                )
                for name in missing
            ],
            ignore_conflicts=True,
        )
        known.update(Campaign.objects.filter(name__in=missing).values_list("name", "pk"))
    return known


def set_first_touch(contact_ids: set[int] | list[int]) -> None:
    """Give contacts that have no original source yet the one of their earliest touchpoint.

    Set once: a contact whose original source is known (from an import, a form, an earlier
    touch) keeps it. Set-based: one read of the candidates' touchpoints, one batched UPDATE by
    the CRM's action.
    """
    if not contact_ids:
        return
    blank_filter = {"original_source": "", "original_medium": "", "original_campaign": ""}
    ids = sorted(contact_ids)
    firsts: dict[int, tuple[str, str, str]] = {}
    for start in range(0, len(ids), 1000):
        blank = list(
            Contact.objects.filter(pk__in=ids[start : start + 1000], **blank_filter).values_list(
                "pk", flat=True
            )
        )
        if not blank:
            continue
        rows = (
            Touchpoint.objects.filter(contact_id__in=blank)
            .order_by("contact_id", "occurred_at", "id")
            .values_list("contact_id", "source", "medium", "campaign__name")
        )
        for contact_id, source, medium, campaign in rows.iterator(chunk_size=5000):
            if contact_id not in firsts:
                firsts[contact_id] = (source, medium, campaign or "")
    crm.fill_original_source(firsts)


# -- forms --------------------------------------------------------------------------------------

FIELD_TYPES = ("text", "email", "tel", "textarea", "checkbox", "select")
CONTACT_TARGETS = ("email", "first_name", "last_name", "phone", "job_title")
RESERVED_NAMES = ("_vid", "_hp", "_consent", "_url", "_referrer")


@dataclass(frozen=True)
class Submission:
    contact: Contact
    created: bool
    event_id: str


def _clean_origins(raw: Any) -> list[str]:
    """Origins as browsers send them: ``scheme://host[:port]``, lower-case, no path."""
    if isinstance(raw, str):
        raw = [line for line in re.split(r"[\s,]+", raw) if line]
    if not isinstance(raw, list):
        raise ValidationFailed.one("allowed_origins", "give a list of origins")
    origins: list[str] = []
    for item in raw:
        text = str(item).strip().rstrip("/").lower()
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise ValidationFailed.one(
                "allowed_origins",
                f"{item!r} is not an origin (like https://www.example.com, without a path)",
            )
        if text not in origins:
            origins.append(text)
    return origins


def _clean_form_fields(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed.one("fields", "a form needs at least one field")
    custom = set(
        PropertyDefinition.objects.filter(object_type=ObjectType.CONTACT).values_list(
            "name", flat=True
        )
    )
    cleaned: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for position, item in enumerate(raw):
        key = f"fields.{position}"
        if not isinstance(item, dict):
            errors[key] = ["each field is an object with a name, a label and a type"]
            continue
        name = slugify(str(item.get("name") or "")).replace("-", "_")
        type_ = str(item.get("type") or "text")
        maps_to = str(item.get("maps_to") or "")
        problems: list[str] = []
        if not name:
            problems.append("a field needs a name")
        elif name in seen:
            problems.append(f"two fields are named {name!r}")
        elif name in RESERVED_NAMES:
            problems.append(f"{name!r} is reserved")
        if type_ not in FIELD_TYPES:
            problems.append(f"type {type_!r} is not one of {', '.join(FIELD_TYPES)}")
        if maps_to and maps_to not in CONTACT_TARGETS and maps_to not in custom:
            problems.append(
                f"maps_to {maps_to!r} is neither a contact field "
                f"({', '.join(CONTACT_TARGETS)}) nor a defined custom property"
            )
        choices = item.get("choices") or []
        if type_ == "select" and not choices:
            problems.append("a select field needs its choices")
        if problems:
            errors[key] = problems
            continue
        seen.add(name)
        cleaned.append(
            {
                "name": name,
                "label": str(item.get("label") or name.replace("_", " ").capitalize()),
                "type": type_,
                "required": bool(item.get("required")),
                "maps_to": maps_to,
                "choices": [str(c) for c in choices],
            }
        )
    if not errors and not any(f["maps_to"] == "email" for f in cleaned):
        errors["fields"] = ["one field must map to the contact's email"]
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if "name" in data:
        values["name"] = str(data["name"] or "").strip()
        if not values["name"]:
            errors["name"] = ["a form needs a name"]
    for key in ("thank_you_message", "redirect_url", "consent_text"):
        if key in data:
            values[key] = str(data[key] or "").strip()
    if values.get("redirect_url"):
        parts = urlsplit(values["redirect_url"])
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors["redirect_url"] = ["the redirect must be an http(s) URL"]
    if "consent_required" in data:
        values["consent_required"] = bool(data["consent_required"])
    if "is_active" in data:
        values["is_active"] = bool(data["is_active"])
    try:
        if "fields" in data:
            values["fields"] = _clean_form_fields(data["fields"])
        if "allowed_origins" in data:
            values["allowed_origins"] = _clean_origins(data["allowed_origins"])
    except ValidationFailed as failed:
        errors.update(failed.errors)
    if values.get("consent_required") and not values.get("consent_text", "x"):
        errors["consent_text"] = ["a required consent needs its text"]
    if errors:
        raise ValidationFailed(errors)
    return values


def create_form(data: Mapping[str, Any], *, actor: Any = None) -> Form:
    values = _form_values(data)
    if "name" not in values:
        raise ValidationFailed.one("name", "a form needs a name")
    if "fields" not in values:
        raise ValidationFailed.one("fields", "a form needs at least one field")
    with transaction.atomic():
        base = slugify(values["name"])[:40] or "form"
        form = Form.objects.create(
            slug=f"{base}-{secrets.token_hex(3)}",
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            **values,
        )
        record_audit("form.create", "form", form.pk, actor=actor, changes={"name": form.name})
    return form


def update_form(form: Form, data: Mapping[str, Any], *, actor: Any = None) -> Form:
    values = _form_values(data)
    with transaction.atomic():
        for name, value in values.items():
            setattr(form, name, value)
        form.updated_at = timezone.now()
        form.save()
        record_audit("form.update", "form", form.pk, actor=actor, changes={"fields": list(values)})
    return form


def submit_form(
    form: Form,
    data: Mapping[str, Any],
    *,
    visitor_id: str = "",
    page_url: str = "",
    referrer: str = "",
) -> Submission:
    """Record a submission: create or update the contact, record ``form_submit`` and attach the
    visitor's earlier anonymous events and touchpoints to the contact."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for spec in form.fields:
        name = spec["name"]
        raw = data.get(name)
        if spec["type"] == "checkbox":
            value: Any = raw not in (None, "", "0", "false", "off", False)
        else:
            value = str(raw if raw is not None else "").strip()[:2000]
        if spec["required"] and value in ("", False):
            errors[name] = [f"{spec['label']} is required"]
            continue
        if spec["type"] == "email" and value:
            try:
                validate_email(value)
            except DjangoValidationError:
                errors[name] = [f"{value!r} is not a valid email address"]
                continue
        if spec["type"] == "select" and value and value not in spec["choices"]:
            errors[name] = [f"{value!r} is not one of the choices"]
            continue
        values[name] = value
    consent = data.get("_consent") not in (None, "", "0", "false", "off", False)
    if form.consent_text and form.consent_required and not consent:
        errors["_consent"] = ["please give your consent to continue"]
    email_field = next(f["name"] for f in form.fields if f["maps_to"] == "email")
    if not values.get(email_field) and email_field not in errors:
        errors[email_field] = ["an email address is required"]
    if visitor_id and not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", visitor_id):
        visitor_id = ""
    if errors:
        raise ValidationFailed(errors)

    email = str(values[email_field]).lower()
    contact_data: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for spec in form.fields:
        value = values.get(spec["name"])
        if value in (None, ""):
            continue
        target = spec["maps_to"]
        if target in CONTACT_TARGETS:
            contact_data[target] = value
        elif target:
            properties[target] = value
        else:
            extra[spec["name"]] = value
    if properties:
        contact_data["properties"] = properties
    return retrying_if_locked(
        lambda: _record_submission(
            form, email, contact_data, extra, consent, visitor_id, page_url, referrer
        )
    )


def _record_submission(
    form: Form,
    email: str,
    contact_data: dict[str, Any],
    extra: dict[str, Any],
    consent: bool,
    visitor_id: str,
    page_url: str,
    referrer: str,
) -> Submission:
    with transaction.atomic():
        contact = Contact.objects.filter(email=email).first()
        created = contact is None
        if contact is None:
            contact = crm.create_contact(contact_data, cause=TransitionCause.API)
        else:
            crm.update_contact(
                contact,
                {k: v for k, v in contact_data.items() if k != "email"},
                cause=TransitionCause.API,
            )
        event: dict[str, Any] = {
            "type": "form_submit",
            "contact_id": contact.pk,
            "properties": {"form": form.slug, "form_name": form.name, "fields": extra},
        }
        if form.consent_text:
            event["properties"]["consent"] = consent
            event["properties"]["consent_text"] = form.consent_text
        if visitor_id:
            event["visitor_id"] = visitor_id
        if page_url:
            event["url"] = page_url[:2048]
        if referrer:
            event["referrer"] = referrer[:2048]
        outcome = record_events([event], source=EventSource.FORM)
        if outcome.rejected:
            raise ValidationFailed.one("form", outcome.errors[0]["reason"])
        if consent and form.consent_text:
            # E-mail consent: the ticked box subscribes to the types the form offers.
            from embudo.automation.consent import subscribe_from_form

            subscribe_from_form(contact, form.pk, form.consent_text)
    return Submission(
        contact=contact, created=created, event_id=str(uuid.UUID(outcome.event_ids[0]))
    )


# -- site keys ----------------------------------------------------------------------------------


def create_site_key(name: str, allowed_origins: Any, *, actor: Any = None) -> SiteKey:
    if not name.strip():
        raise ValidationFailed.one("name", "a site key needs a name")
    origins = _clean_origins(allowed_origins)
    if not origins:
        raise ValidationFailed.one(
            "allowed_origins", "list at least one origin the snippet will run on"
        )
    with transaction.atomic():
        site_key = SiteKey.objects.create(
            name=name.strip(),
            key=f"pk_{secrets.token_urlsafe(18)}",
            allowed_origins=origins,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        record_audit(
            "sitekey.create", "sitekey", site_key.pk, actor=actor, changes={"origins": origins}
        )
    return site_key


def update_site_key(site_key: SiteKey, allowed_origins: Any, *, actor: Any = None) -> SiteKey:
    origins = _clean_origins(allowed_origins)
    with transaction.atomic():
        site_key.allowed_origins = origins
        site_key.save(update_fields=["allowed_origins"])
        record_audit(
            "sitekey.update", "sitekey", site_key.pk, actor=actor, changes={"origins": origins}
        )
    return site_key


def revoke_site_key(site_key: SiteKey, *, actor: Any = None) -> None:
    with transaction.atomic():
        site_key.revoked_at = timezone.now()
        site_key.save(update_fields=["revoked_at"])
        record_audit("sitekey.revoke", "sitekey", site_key.pk, actor=actor)


# -- channel rules ------------------------------------------------------------------------------


def save_channel_rules(rows: Sequence[Mapping[str, Any]], *, actor: Any = None) -> None:
    """Replace the channel rules with ``rows``, in that order, after checking every pattern."""
    errors: dict[str, list[str]] = {}
    cleaned: list[ChannelRule] = []
    for position, row in enumerate(rows):
        channel = str(row.get("channel") or "")
        if channel not in Channel.values:
            errors[f"rules.{position}.channel"] = [
                f"{channel!r} is not one of {', '.join(Channel.values)}"
            ]
        patterns = {}
        for name in ("source_pattern", "medium_pattern", "campaign_pattern"):
            pattern = str(row.get(name) or "").strip()
            try:
                compile_pattern(pattern)
            except re.error as error:
                errors[f"rules.{position}.{name}"] = [
                    f"{pattern!r} is not a regular expression: {error}"
                ]
            patterns[name] = pattern
        cleaned.append(
            ChannelRule(
                position=(position + 1) * 10,
                channel=channel,
                note=str(row.get("note") or "")[:255],
                **patterns,
            )
        )
    if not cleaned:
        errors["rules"] = ["keep at least one rule (an empty rule matches everything)"]
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        ChannelRule.objects.all().delete()
        ChannelRule.objects.bulk_create(cleaned)
        record_audit(
            "channelrules.save", "channelrule", "", actor=actor, changes={"rules": len(cleaned)}
        )
    # Reload now (this process sees its own writes) and again once committed, when an outer
    # transaction was open.
    RULEBOOK.forget()
    transaction.on_commit(RULEBOOK.forget)


def reset_channel_rules(*, actor: Any = None) -> None:
    save_channel_rules(
        [
            {
                "channel": c,
                "source_pattern": s,
                "medium_pattern": m,
                "campaign_pattern": k,
                "note": n,
            }
            for c, s, m, k, n in DEFAULT_RULES
        ],
        actor=actor,
    )
