"""Every write of segments and personas: validated, audited, and (for personas) followed by the
set-based reassignment that keeps each contact's stored persona current."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import DateTimeField, IntegerField, Q, QuerySet, Value
from django.utils import timezone
from django.utils.translation import gettext as _

from embudo import pipeline
from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.crm.models import Contact
from embudo.db.bulk import insert_select
from embudo.errors import ValidationFailed
from embudo.segments import queries
from embudo.segments.conditions import (
    ConditionError,
    compile_condition,
    fields_read,
    validate_condition,
)
from embudo.segments.models import (
    Persona,
    PersonaAssignment,
    Segment,
    SegmentKind,
    SegmentMember,
)

SEGMENT_FIELDS = ("name", "description", "kind", "conditions")
PERSONA_FIELDS = ("name", "description", "conditions", "priority")
# Contact ids per statement when a list of ids is sent to the database (SQLite's variable limit).
ID_CHUNK = 5000
# Up to this many contacts a persona change reassigns everyone within the request.
SYNC_CONTACTS = 50_000


def _conditions(raw: Any, *, allow_persona: bool = True) -> dict[str, Any]:
    allow = None if allow_persona else (lambda name: name != "persona")
    try:
        return validate_condition(raw if raw is not None else {}, allow=allow).data
    except ConditionError as error:
        field = "conditions" + ("." + error.path if error.path else "")
        raise ValidationFailed.one(field, error.problem) from None


def _name(data: Mapping[str, Any], model: type[Segment] | type[Persona], pk: int | None) -> str:
    name = str(data.get("name") or "").strip()
    if not name:
        raise ValidationFailed.one("name", _("a name is required"))
    if len(name) > 128:
        raise ValidationFailed.one("name", _("at most 128 characters"))
    if model.objects.filter(name=name).exclude(pk=pk or 0).exists():
        raise ValidationFailed.one(
            "name", _("another one is already named %(name)r") % {"name": name}
        )
    return name


def _unknown(data: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationFailed({name: [_("unknown field")] for name in unknown})


# -- segments -----------------------------------------------------------------------------------


def _clean_segment(data: Mapping[str, Any], segment: Segment | None) -> dict[str, Any]:
    _unknown(data, SEGMENT_FIELDS)
    merged = {
        "name": segment.name if segment else "",
        "description": segment.description if segment else "",
        "kind": segment.kind if segment else SegmentKind.DYNAMIC,
        "conditions": segment.conditions if segment else {},
        **{k: v for k, v in data.items()},
    }
    kind = merged["kind"]
    if kind not in SegmentKind.values:
        raise ValidationFailed.one("kind", _("%(kind)r is not dynamic or static") % {"kind": kind})
    if segment is not None and kind != segment.kind:
        raise ValidationFailed.one("kind", _("a segment's kind cannot change"))
    conditions = _conditions(merged["conditions"])
    if kind == SegmentKind.STATIC and conditions:
        raise ValidationFailed.one("conditions", _("a static list has members, not conditions"))
    return {
        "name": _name(merged, Segment, segment.pk if segment else None),
        "description": str(merged["description"] or ""),
        "kind": kind,
        "conditions": conditions,
    }


@transaction.atomic
def create_segment(data: Mapping[str, Any], *, actor: Actor = None) -> Segment:
    values = _clean_segment(data, None)
    segment = Segment.objects.create(**values, created_by=_user(actor))
    record_audit("segment.create", "segment", segment.pk, actor=actor, changes=values)
    return segment


@transaction.atomic
def update_segment(segment: Segment, data: Mapping[str, Any], *, actor: Actor = None) -> Segment:
    values = _clean_segment(data, segment)
    changes = {k: v for k, v in values.items() if getattr(segment, k) != v}
    for name, value in values.items():
        setattr(segment, name, value)
    segment.updated_at = timezone.now()
    segment.save()
    if changes:
        record_audit("segment.update", "segment", segment.pk, actor=actor, changes=changes)
    return segment


@transaction.atomic
def delete_segment(segment: Segment, *, actor: Actor = None) -> None:
    pk, name = segment.pk, segment.name
    segment.delete()
    record_audit("segment.delete", "segment", pk, actor=actor, changes={"name": name})


def _static(segment: Segment) -> None:
    if segment.kind != SegmentKind.STATIC:
        raise ValidationFailed.one(
            "contact_ids",
            _("members are added to static lists; a dynamic segment follows its conditions"),
        )


@transaction.atomic
def add_members(
    segment: Segment, contact_ids: Iterable[int], *, actor: Actor = None, visible: Q | None = None
) -> int:
    """Add contacts to a static list (those already in it stay once); returns how many were new.
    ``visible`` narrows which contacts the actor may add; an id outside it is an error."""
    _static(segment)
    wanted = sorted(set(contact_ids))
    found: set[int] = set()
    for start in range(0, len(wanted), ID_CHUNK):
        chunk = wanted[start : start + ID_CHUNK]
        query = Contact.objects.filter(pk__in=chunk)
        if visible is not None:
            query = query.filter(visible)
        found.update(query.values_list("pk", flat=True))
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10])
        raise ValidationFailed.one("contact_ids", _("no contact with id %(ids)s") % {"ids": shown})
    already: set[int] = set()
    for start in range(0, len(wanted), ID_CHUNK):
        already.update(
            SegmentMember.objects.filter(
                segment=segment, contact_id__in=wanted[start : start + ID_CHUNK]
            ).values_list("contact_id", flat=True)
        )
    new = [i for i in wanted if i not in already]
    now = timezone.now()
    SegmentMember.objects.bulk_create(
        [
            SegmentMember(segment=segment, contact_id=i, added_at=now, added_by=_user(actor))
            for i in new
        ],
        batch_size=1000,
    )
    if new:
        pipeline.list_changed(segment.pk, joined=new)
        record_audit(
            "segment.add_members",
            "segment",
            segment.pk,
            actor=actor,
            changes={"added": len(new), "contact_ids": new[:100]},
        )
    return len(new)


@transaction.atomic
def remove_members(segment: Segment, contact_ids: Iterable[int], *, actor: Actor = None) -> int:
    """Take contacts out of a static list; returns how many were in it."""
    _static(segment)
    wanted = sorted(set(contact_ids))
    left: list[int] = []
    for start in range(0, len(wanted), ID_CHUNK):
        members = SegmentMember.objects.filter(
            segment=segment, contact_id__in=wanted[start : start + ID_CHUNK]
        )
        left += members.values_list("contact_id", flat=True)
        members.delete()
    removed = len(left)
    if removed:
        pipeline.list_changed(segment.pk, left=left)
        record_audit(
            "segment.remove_members",
            "segment",
            segment.pk,
            actor=actor,
            changes={"removed": removed, "contact_ids": wanted[:100]},
        )
    return removed


# -- personas -----------------------------------------------------------------------------------


def _clean_persona(data: Mapping[str, Any], persona: Persona | None) -> dict[str, Any]:
    _unknown(data, PERSONA_FIELDS)
    merged = {
        "name": persona.name if persona else "",
        "description": persona.description if persona else "",
        "conditions": persona.conditions if persona else None,
        "priority": persona.priority if persona else 100,
        **{k: v for k, v in data.items()},
    }
    if merged["conditions"] is None:
        raise ValidationFailed.one("conditions", _("a persona needs conditions"))
    priority = merged["priority"]
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100000:
        raise ValidationFailed.one("priority", _("a whole number from 0 to 100000 (lowest first)"))
    return {
        "name": _name(merged, Persona, persona.pk if persona else None),
        "description": str(merged["description"] or ""),
        # A persona cannot be defined by personas: the order of assignment would be circular.
        "conditions": _conditions(merged["conditions"], allow_persona=False),
        "priority": priority,
    }


@transaction.atomic
def create_persona(data: Mapping[str, Any], *, actor: Actor = None) -> Persona:
    values = _clean_persona(data, None)
    persona = Persona.objects.create(**values)
    record_audit("persona.create", "persona", persona.pk, actor=actor, changes=values)
    personas_changed()
    return persona


@transaction.atomic
def update_persona(persona: Persona, data: Mapping[str, Any], *, actor: Actor = None) -> Persona:
    values = _clean_persona(data, persona)
    changes = {k: v for k, v in values.items() if getattr(persona, k) != v}
    for name, value in values.items():
        setattr(persona, name, value)
    persona.updated_at = timezone.now()
    persona.save()
    if changes:
        record_audit("persona.update", "persona", persona.pk, actor=actor, changes=changes)
        if {"conditions", "priority"} & set(changes):
            personas_changed()
    return persona


@transaction.atomic
def delete_persona(persona: Persona, *, actor: Actor = None) -> None:
    pk, name = persona.pk, persona.name
    persona.delete()
    record_audit("persona.delete", "persona", pk, actor=actor, changes={"name": name})
    personas_changed()


def personas_changed() -> bool:
    """Reassign everyone after a persona change: at once up to ``SYNC_CONTACTS`` contacts (the
    page shows the new counts), else in a background task once this commits (a million contacts
    take tens of seconds). Returns whether it was done at once."""
    if Contact.objects.count() <= SYNC_CONTACTS:
        assign_personas()
        return True
    from embudo.segments.tasks import assign_personas_task

    transaction.on_commit(assign_personas_task.enqueue)
    return False


def assign_personas(contact_ids: Iterable[int] | None = None) -> int:
    """Give every contact (or just ``contact_ids``) the first persona, by priority, whose
    conditions it matches, and none if none matches. Set-based: one delete, then one
    ``INSERT … SELECT`` per persona over the contacts still without one. Returns how many
    contacts have a persona among those considered; the pipeline hears of those whose persona
    changed."""
    personas = list(Persona.objects.order_by("priority", "id"))
    if contact_ids is None:
        with transaction.atomic():
            before = _assignments(PersonaAssignment.objects.all())
            PersonaAssignment.objects.all().delete()
            total = sum(_assign(p, None) for p in personas)
            pipeline.personas_changed(
                _changed(before, _assignments(PersonaAssignment.objects.all()))
            )
        return total
    ids = sorted(set(contact_ids))
    total = 0
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        with transaction.atomic():
            rows = PersonaAssignment.objects.filter(contact_id__in=chunk)
            before = _assignments(rows)
            rows.delete()
            total += sum(_assign(p, chunk) for p in personas)
            pipeline.personas_changed(_changed(before, _assignments(rows)))
    return total


def _assignments(rows: QuerySet[PersonaAssignment]) -> np.ndarray:
    """The assignments as one sorted int64 key each: contact id and persona id together."""
    keys = np.fromiter(
        (
            contact_id << 32 | persona_id
            for contact_id, persona_id in rows.order_by().values_list("contact_id", "persona_id")
        ),
        dtype=np.int64,
    )
    keys.sort()
    return keys


def _changed(before: np.ndarray, after: np.ndarray) -> list[int]:
    """The contacts whose persona differs between two sets of assignment keys."""
    return np.unique(np.setxor1d(before, after, assume_unique=True) >> 32).tolist()


def _assign(persona: Persona, scope: list[int] | None) -> int:
    """Insert ``persona`` for the contacts (in ``scope``) that match it and have none yet."""
    rows = (
        Contact.objects.filter(compile_condition(persona.conditions, contact_ids=scope))
        .exclude(persona_assignment__isnull=False)
        .annotate(
            _persona=Value(persona.pk, output_field=IntegerField()),
            _at=Value(timezone.now(), output_field=DateTimeField()),
        )
        .values_list("pk", "_persona", "_at")
    )
    return insert_select(PersonaAssignment, ("contact_id", "persona_id", "assigned_at"), rows)


# -- reactions (run by embudo.pipeline) ---------------------------------------------------------


def persona_fields() -> frozenset[str]:
    """The fields of the condition language the personas read; none when there are none."""
    if not queries.has_personas():
        return frozenset()
    stored = Persona.objects.values_list("conditions", flat=True)
    return frozenset().union(*(fields_read(conditions) for conditions in stored))


def before_merge(primary: Contact, duplicate: Contact) -> None:
    """The duplicate's persona goes (the primary's is recomputed after the merge), and a list
    holding both keeps only the primary's membership."""
    PersonaAssignment.objects.filter(contact=duplicate).delete()
    both = SegmentMember.objects.filter(contact=primary).values("segment_id")
    SegmentMember.objects.filter(contact=duplicate, segment_id__in=both).delete()


def _user(actor: Actor) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None
