"""Every write to contacts, companies, activities and the lifecycle history.

Each action owns its transaction, records the lifecycle history and the audit entry, and raises
:class:`ValidationFailed` with per-field messages on bad input, before anything is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from embudo import pipeline
from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.crm.models import (
    FUNNEL_ORDER,
    Activity,
    ActivityKind,
    Company,
    Contact,
    LeadStatus,
    LifecycleStage,
    LifecycleTransition,
    ObjectType,
    PropertyDefinition,
    PropertyType,
    TransitionCause,
)
from embudo.crm.properties import PropertyValueError, coerce, property_name
from embudo.errors import ValidationFailed

# Ids per statement when many are sent to the database (SQLite's variable limit).
ID_CHUNK = 5_000

CONTACT_FIELDS = (
    "email",
    "external_id",
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "company_id",
    "owner_id",
    "lead_status",
    "original_source",
    "original_medium",
    "original_campaign",
)
COMPANY_FIELDS = (
    "name",
    "domain",
    "external_id",
    "industry",
    "employees",
    "country",
    "city",
    "owner_id",
)


def normalize_email(raw: Any) -> str | None:
    if raw is None:
        return None
    email = str(raw).strip().lower()
    return email or None


def check_email(email: str | None) -> list[str]:
    if email is None:
        return []
    try:
        validate_email(email)
    except DjangoValidationError:
        return [f"{email!r} is not a valid email address"]
    return []


# -- custom properties ---------------------------------------------------------------------------


@transaction.atomic
def define_property(
    object_type: str,
    name: str,
    type_: str,
    *,
    label: str = "",
    choices: list[str] | None = None,
    actor: Actor = None,
) -> PropertyDefinition:
    slug = property_name(name)
    errors: dict[str, list[str]] = {}
    if object_type not in ObjectType.values:
        errors["object_type"] = [f"{object_type!r} is not one of {', '.join(ObjectType.values)}"]
    if not slug:
        errors["name"] = [f"{name!r} has no letters or digits to name a property with"]
    elif slug in _builtin_fields(object_type):
        errors["name"] = [f"{slug!r} is a built-in field, not a custom property"]
    if type_ not in PropertyType.values:
        errors["type"] = [f"{type_!r} is not one of {', '.join(PropertyType.values)}"]
    if type_ == PropertyType.CHOICE and not choices:
        errors["choices"] = ["a choice property needs its list of choices"]
    if errors:
        raise ValidationFailed(errors)
    definition, created = PropertyDefinition.objects.get_or_create(
        object_type=object_type,
        name=slug,
        defaults={"type": type_, "label": label or name.strip(), "choices": choices or []},
    )
    if not created and definition.type != type_:
        raise ValidationFailed.one(
            "type", f"property {slug!r} already exists with type {definition.type}"
        )
    if created:
        record_audit(
            "property.define",
            "property",
            definition.pk,
            actor=actor,
            changes={"name": slug, "type": type_},
        )
    return definition


def _builtin_fields(object_type: str) -> set[str]:
    model: type[Model] = Contact if object_type == ObjectType.CONTACT else Company
    names = {f.name for f in model._meta.get_fields()}
    return names | {f.removesuffix("_id") for f in names}


def clean_properties(object_type: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Values coerced to their defined types; unknown names and bad values are field errors."""
    definitions = {
        d.name: d for d in PropertyDefinition.objects.filter(object_type=object_type, name__in=raw)
    }
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in raw.items():
        definition = definitions.get(name)
        if definition is None:
            errors[f"properties.{name}"] = [f"no custom property named {name!r} is defined"]
            continue
        try:
            cleaned[name] = coerce(value, definition.type, definition.choices)
        except PropertyValueError as error:
            errors[f"properties.{name}"] = [str(error)]
    if errors:
        raise ValidationFailed(errors)
    return cleaned


# -- contacts -----------------------------------------------------------------------------------


def _clean_contact_fields(data: Mapping[str, Any], contact: Contact | None) -> dict[str, Any]:
    unknown = set(data) - set(CONTACT_FIELDS) - {"lifecycle_stage", "properties"}
    errors: dict[str, list[str]] = {name: ["unknown field"] for name in sorted(unknown)}
    values = {name: data[name] for name in CONTACT_FIELDS if name in data}
    if "email" in values:
        values["email"] = normalize_email(values["email"])
        if problems := check_email(values["email"]):
            errors["email"] = problems
        elif values["email"] and _taken(Contact, "email", values["email"], contact):
            errors["email"] = [f"another contact already has the email {values['email']}"]
    if "external_id" in values:
        values["external_id"] = (
            (str(values["external_id"]).strip() or None)
            if values["external_id"] is not None
            else None
        )
        if values["external_id"] and _taken(Contact, "external_id", values["external_id"], contact):
            errors["external_id"] = [
                f"another contact already has external id {values['external_id']}"
            ]
    if values.get("lead_status") and values["lead_status"] not in LeadStatus.values:
        errors["lead_status"] = [
            f"{values['lead_status']!r} is not one of {', '.join(LeadStatus.values)}"
        ]
    if (
        values.get("company_id") is not None
        and not Company.objects.filter(pk=values["company_id"]).exists()
    ):
        errors["company_id"] = [f"no company with id {values['company_id']}"]
    if (
        values.get("owner_id") is not None
        and not get_user_model().objects.filter(pk=values["owner_id"], is_active=True).exists()
    ):
        errors["owner_id"] = [f"no active user with id {values['owner_id']}"]
    stage = data.get("lifecycle_stage")
    if stage is not None and stage not in LifecycleStage.values:
        errors["lifecycle_stage"] = [f"{stage!r} is not one of {', '.join(LifecycleStage.values)}"]
    for name in (
        "first_name",
        "last_name",
        "phone",
        "job_title",
        "original_source",
        "original_medium",
        "original_campaign",
        "lead_status",
    ):
        if name in values and values[name] is None:
            values[name] = ""
    try:
        properties = clean_properties(ObjectType.CONTACT, data.get("properties") or {})
    except ValidationFailed as failed:
        errors.update(failed.errors)
        properties = {}
    if errors:
        raise ValidationFailed(errors)
    values["properties"] = properties
    return values


def _taken(model: type[Model], field: str, value: Any, instance: Model | None) -> bool:
    query = model._default_manager.filter(**{field: value})
    if instance is not None:
        query = query.exclude(pk=instance.pk)
    return query.exists()


def create_contact(
    data: Mapping[str, Any],
    *,
    actor: Actor = None,
    cause: str = TransitionCause.MANUAL,
    at: dt.datetime | None = None,
) -> Contact:
    values = _clean_contact_fields(data, None)
    stage = data.get("lifecycle_stage") or LifecycleStage.SUBSCRIBER
    now = at or timezone.now()
    with transaction.atomic():
        try:
            contact = Contact.objects.create(
                **values,
                lifecycle_stage=stage,
                lifecycle_stage_changed_at=now,
                created_at=now,
                updated_at=now,
            )
        except IntegrityError as error:
            raise ValidationFailed.one(
                "email", f"the contact clashes with another: {error}"
            ) from None
        LifecycleTransition.objects.create(
            contact=contact,
            from_stage="",
            to_stage=stage,
            changed_at=now,
            cause=cause,
            actor=_user(actor),
        )
        record_audit("contact.create", "contact", contact.pk, actor=actor)
        if contact.owner_id:
            _notify_new_owner(contact, actor)
        pipeline.contacts_created([contact.pk])
        pipeline.stage_changed(stage, [contact.pk])
    return contact


def update_contact(
    contact: Contact,
    data: Mapping[str, Any],
    *,
    actor: Actor = None,
    cause: str = TransitionCause.MANUAL,
) -> Contact:
    """Apply a partial change; custom properties are merged (``None`` removes one)."""
    values = _clean_contact_fields(data, contact)
    properties = values.pop("properties")
    with transaction.atomic():
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if getattr(contact, name) != value:
                changes[name] = value
                setattr(contact, name, value)
        if properties:
            merged = {**contact.properties, **properties}
            contact.properties = {k: v for k, v in merged.items() if v is not None}
            changes["properties"] = properties
        stage = data.get("lifecycle_stage")
        if changes:
            contact.updated_at = timezone.now()
            contact.save()
            record_audit(
                "contact.update", "contact", contact.pk, actor=actor, changes=_jsonable(changes)
            )
            if "owner_id" in changes and contact.owner_id:
                _notify_new_owner(contact, actor)
            pipeline.contacts_changed([contact.pk], changes)
        if stage and stage != contact.lifecycle_stage:
            set_lifecycle_stage(contact, stage, cause=cause, actor=actor)
    return contact


def set_lifecycle_stage(
    contact: Contact,
    stage: str,
    *,
    cause: str,
    actor: Actor = None,
    at: dt.datetime | None = None,
    note: str = "",
) -> LifecycleTransition | None:
    """Move a contact to ``stage`` (forwards, backwards or out), recording the transition.

    Moving to the stage it is already in records nothing and returns None.
    """
    if stage not in LifecycleStage.values:
        raise ValidationFailed.one(
            "lifecycle_stage", f"{stage!r} is not one of {', '.join(LifecycleStage.values)}"
        )
    if cause not in TransitionCause.values:
        raise ValidationFailed.one("cause", f"{cause!r} is not a transition cause")
    if stage == contact.lifecycle_stage:
        return None
    when = at or timezone.now()
    with transaction.atomic():
        transition = LifecycleTransition.objects.create(
            contact=contact,
            from_stage=contact.lifecycle_stage,
            to_stage=stage,
            changed_at=when,
            cause=cause,
            actor=_user(actor),
            note=note[:255],
        )
        Contact.objects.filter(pk=contact.pk).update(
            lifecycle_stage=stage, lifecycle_stage_changed_at=when, updated_at=timezone.now()
        )
        contact.lifecycle_stage = stage
        contact.lifecycle_stage_changed_at = when
        pipeline.stage_changed(stage, [contact.pk])
    return transition


def move_contacts(
    stage: str,
    contact_ids: Iterable[int],
    *,
    cause: str,
    at: dt.datetime | None = None,
    note: str = "",
    actor: Actor = None,
    only_from: Iterable[str] | None = None,
) -> list[int]:
    """Move many contacts to ``stage`` at once, each with its transition: one read of their
    stages, one multi-row INSERT and one UPDATE per chunk. Contacts already there (or, with
    ``only_from``, at a stage not listed) stay. Returns the ids moved."""
    if stage not in LifecycleStage.values:
        raise ValidationFailed.one(
            "lifecycle_stage", f"{stage!r} is not one of {', '.join(LifecycleStage.values)}"
        )
    if cause not in TransitionCause.values:
        raise ValidationFailed.one("cause", f"{cause!r} is not a transition cause")
    ids = sorted(set(contact_ids))
    sources = None if only_from is None else list(only_from)
    when = at or timezone.now()
    moved: list[int] = []
    with transaction.atomic():
        for start in range(0, len(ids), ID_CHUNK):
            current = Contact.objects.filter(pk__in=ids[start : start + ID_CHUNK]).exclude(
                lifecycle_stage=stage
            )
            if sources is not None:
                current = current.filter(lifecycle_stage__in=sources)
            rows = list(current.values_list("pk", "lifecycle_stage"))
            if not rows:
                continue
            LifecycleTransition.objects.bulk_create(
                [
                    LifecycleTransition(
                        contact_id=pk,
                        from_stage=before,
                        to_stage=stage,
                        changed_at=when,
                        cause=cause,
                        actor=_user(actor),
                        note=note[:255],
                    )
                    for pk, before in rows
                ],
                batch_size=2_000,
            )
            chunk = [pk for pk, _before in rows]
            Contact.objects.filter(pk__in=chunk).update(
                lifecycle_stage=stage, lifecycle_stage_changed_at=when, updated_at=timezone.now()
            )
            moved += chunk
        pipeline.stage_changed(stage, moved)
    return moved


def create_contacts(
    rows: Sequence[Mapping[str, str]], *, cause: str, at: dt.datetime | None = None
) -> list[Contact]:
    """Many new subscribers at once, each with its first lifecycle transition: two multi-row
    INSERTs and one audit entry however many. ``rows`` hold an email (checked by the caller)
    and text fields; a text longer than its column is cut. Raises ``IntegrityError`` when one
    clashes with an existing contact, having written nothing."""
    now = at or timezone.now()
    limits = {f.name: f.max_length for f in Contact._meta.concrete_fields if f.max_length}
    with transaction.atomic():
        created = Contact.objects.bulk_create(
            [
                Contact(
                    **{name: str(value)[: limits.get(name)] for name, value in row.items()},
                    lifecycle_stage=LifecycleStage.SUBSCRIBER,
                    lifecycle_stage_changed_at=now,
                    created_at=now,
                    updated_at=now,
                )
                for row in rows
            ],
            batch_size=500,
        )
        LifecycleTransition.objects.bulk_create(
            [
                LifecycleTransition(
                    contact_id=contact.pk,
                    from_stage="",
                    to_stage=LifecycleStage.SUBSCRIBER,
                    changed_at=now,
                    cause=cause,
                )
                for contact in created
            ],
            batch_size=500,
        )
        record_audit("contact.create_many", "contact", "", changes={"count": len(created)})
        ids = [contact.pk for contact in created]
        pipeline.contacts_created(ids)
        pipeline.stage_changed(LifecycleStage.SUBSCRIBER, ids)
    return created


FIRST_TOUCH_FIELDS = ("original_source", "original_medium", "original_campaign")


def fill_original_source(firsts: Mapping[int, tuple[str, str, str]]) -> None:
    """Give contacts their original source, medium and campaign (contact id → the three), where
    all three are still blank: one batched UPDATE. A source known already is kept."""
    if not firsts:
        return
    table = connection.ops.quote_name(Contact._meta.db_table)
    lengths = {f.name: f.max_length for f in Contact._meta.concrete_fields}
    limits = [lengths[name] for name in FIRST_TOUCH_FIELDS]
    blank = " AND ".join(f"{name} = ''" for name in FIRST_TOUCH_FIELDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET original_source = %s, original_medium = %s, "
            f"original_campaign = %s WHERE id = %s AND {blank}",
            [
                (*(value[:limit] for value, limit in zip(first, limits, strict=True)), pk)
                for pk, first in firsts.items()
            ],
        )
        pipeline.contacts_changed(firsts, FIRST_TOUCH_FIELDS)


def assign_owners(
    owners: Mapping[int, int | None], *, lead_status: str | None = None, actor: Actor = None
) -> None:
    """Give many contacts their owners at once (contact id → user id, None: no owner), one
    update per owner; ``lead_status`` is set on them too. Audited once; no per-contact mail
    (the caller, a bulk router, tells each owner once)."""
    if lead_status is not None and lead_status not in (*LeadStatus.values, ""):
        raise ValidationFailed.one("lead_status", f"{lead_status!r} is not a lead status")
    by_owner: dict[int | None, list[int]] = {}
    for contact_id, owner_id in owners.items():
        by_owner.setdefault(owner_id, []).append(contact_id)
    now = timezone.now()
    with transaction.atomic():
        for owner_id, ids in by_owner.items():
            values: dict[str, Any] = {"owner_id": owner_id, "updated_at": now}
            if lead_status is not None:
                values["lead_status"] = lead_status
            Contact.objects.filter(pk__in=ids).update(**values)
        if owners:
            record_audit(
                "contact.assign",
                "contact",
                actor=actor,
                changes={"contacts": len(owners), "owners": len(by_owner)},
            )
        changed = ["owner_id"] if lead_status is None else ["owner_id", "lead_status"]
        pipeline.contacts_changed(owners, changed)


def delete_contact(contact: Contact, *, actor: Actor = None) -> None:
    with transaction.atomic():
        pk = contact.pk
        contact.delete()
        record_audit("contact.delete", "contact", pk, actor=actor)


@transaction.atomic
def merge_contacts(primary: Contact, duplicate: Contact, *, actor: Actor = None) -> Contact:
    """Fold ``duplicate`` into ``primary``: every related row (activities, lifecycle history and
    whatever other apps attach to a contact) moves over, blank fields are filled from the
    duplicate, and the duplicate is deleted. The merged history keeps both contacts' moves, and
    the merged contact stands at the further of the two funnel stages."""
    if primary.pk == duplicate.pk:
        raise ValidationFailed.one("duplicate", "a contact cannot be merged into itself")
    pipeline.before_merge(primary, duplicate)
    for relation in Contact._meta.related_objects:
        if relation.one_to_many or relation.one_to_one:
            relation.related_model._default_manager.filter(
                **{relation.field.name: duplicate}
            ).update(**{relation.field.name: primary})
        elif relation.many_to_many:
            through = relation.field.remote_field.through  # type: ignore[attr-defined]
            field = next(f.name for f in through._meta.fields if f.related_model is Contact)
            others = [
                f.attname
                for f in through._meta.fields
                if f.is_relation and f.related_model is not Contact
            ]
            rows = through._default_manager
            # A record linked to both contacts keeps the primary's link; the duplicate's would
            # break the link table's uniqueness.
            for other in others:
                shared = rows.filter(**{field: primary}).values(other)
                rows.filter(**{field: duplicate, f"{other}__in": shared}).delete()
            rows.filter(**{field: duplicate}).update(**{field: primary})
    filled: dict[str, Any] = {}
    moved_ids = {"email": duplicate.email, "external_id": duplicate.external_id}
    for name in CONTACT_FIELDS:
        if name in moved_ids:
            continue
        if not getattr(primary, name) and getattr(duplicate, name):
            filled[name] = getattr(duplicate, name)
            setattr(primary, name, getattr(duplicate, name))
    primary.properties = {**duplicate.properties, **primary.properties}
    primary.created_at = min(primary.created_at, duplicate.created_at)
    duplicate_pk, duplicate_stage = duplicate.pk, duplicate.lifecycle_stage
    # Free the duplicate's unique keys before the primary may take them.
    duplicate.delete()
    for name, value in moved_ids.items():
        if not getattr(primary, name) and value:
            setattr(primary, name, value)
            filled[name] = value
    primary.updated_at = timezone.now()
    primary.save()
    if _funnel_rank(duplicate_stage) > _funnel_rank(primary.lifecycle_stage):
        set_lifecycle_stage(
            primary,
            duplicate_stage,
            cause=TransitionCause.MERGE,
            actor=actor,
            note=f"merged with contact {duplicate_pk}",
        )
    record_audit(
        "contact.merge",
        "contact",
        primary.pk,
        actor=actor,
        changes={"merged": duplicate_pk, "filled": _jsonable(filled)},
    )
    pipeline.contacts_changed([primary.pk], [pipeline.ANY_FIELD])
    return primary


# -- companies ----------------------------------------------------------------------------------


def _clean_company_fields(data: Mapping[str, Any], company: Company | None) -> dict[str, Any]:
    unknown = set(data) - set(COMPANY_FIELDS) - {"properties"}
    errors: dict[str, list[str]] = {name: ["unknown field"] for name in sorted(unknown)}
    values = {name: data[name] for name in COMPANY_FIELDS if name in data}
    if "name" in values or company is None:
        name = str(values.get("name") or "").strip()
        if not name:
            errors["name"] = ["a company needs a name"]
        values["name"] = name
    if "domain" in values:
        values["domain"] = str(values["domain"] or "").strip().lower()
    if "external_id" in values:
        values["external_id"] = str(values["external_id"] or "").strip() or None
        if values["external_id"] and _taken(Company, "external_id", values["external_id"], company):
            errors["external_id"] = [
                f"another company already has external id {values['external_id']}"
            ]
    if values.get("employees") is not None:
        try:
            values["employees"] = int(values["employees"])
            if values["employees"] < 0:
                raise ValueError
        except (TypeError, ValueError):
            errors["employees"] = [f"{values['employees']!r} is not a whole number of employees"]
    if (
        values.get("owner_id") is not None
        and not get_user_model().objects.filter(pk=values["owner_id"], is_active=True).exists()
    ):
        errors["owner_id"] = [f"no active user with id {values['owner_id']}"]
    for name in ("domain", "industry", "country", "city"):
        if name in values and values[name] is None:
            values[name] = ""
    try:
        properties = clean_properties(ObjectType.COMPANY, data.get("properties") or {})
    except ValidationFailed as failed:
        errors.update(failed.errors)
        properties = {}
    if errors:
        raise ValidationFailed(errors)
    values["properties"] = properties
    return values


def create_company(data: Mapping[str, Any], *, actor: Actor = None) -> Company:
    values = _clean_company_fields(data, None)
    with transaction.atomic():
        company = Company.objects.create(**values)
        record_audit("company.create", "company", company.pk, actor=actor)
    return company


def update_company(company: Company, data: Mapping[str, Any], *, actor: Actor = None) -> Company:
    values = _clean_company_fields(data, company)
    properties = values.pop("properties")
    with transaction.atomic():
        changes = {k: v for k, v in values.items() if getattr(company, k) != v}
        for name, value in changes.items():
            setattr(company, name, value)
        if properties:
            merged = {**company.properties, **properties}
            company.properties = {k: v for k, v in merged.items() if v is not None}
            changes["properties"] = properties
        if changes:
            company.updated_at = timezone.now()
            company.save()
            record_audit(
                "company.update", "company", company.pk, actor=actor, changes=_jsonable(changes)
            )
            # Its contacts' fit (scores, segments, personas) may hang on the company's fields.
            pipeline.companies_changed([company.pk])
    return company


def delete_company(company: Company, *, actor: Actor = None) -> None:
    with transaction.atomic():
        pk = company.pk
        company.delete()
        record_audit("company.delete", "company", pk, actor=actor)


# -- activities ---------------------------------------------------------------------------------


ACTIVITY_FIELDS = ("kind", "subject", "body", "occurred_at", "due_at", "done")


def _clean_activity_fields(data: Mapping[str, Any], activity: Activity | None) -> dict[str, Any]:
    unknown = set(data) - set(ACTIVITY_FIELDS)
    errors: dict[str, list[str]] = {name: ["unknown field"] for name in sorted(unknown)}
    values = {name: data[name] for name in ACTIVITY_FIELDS if name in data}
    kind = values.get("kind", activity.kind if activity else None)
    if kind not in ActivityKind.values:
        errors["kind"] = [f"{kind!r} is not one of {', '.join(ActivityKind.values)}"]
    if values.get("due_at") is not None and kind != ActivityKind.TASK:
        errors["due_at"] = ["only a task has a due date"]
    for name in ("subject", "body"):
        if name in values and values[name] is None:
            values[name] = ""
    if "occurred_at" in values and values["occurred_at"] is None:
        values["occurred_at"] = timezone.now()
    if errors:
        raise ValidationFailed(errors)
    return values


def log_activity(contact: Contact, data: Mapping[str, Any], *, actor: Actor = None) -> Activity:
    values = _clean_activity_fields(data, None)
    with transaction.atomic():
        activity = Activity.objects.create(contact=contact, actor=_user(actor), **values)
        Contact.objects.filter(pk=contact.pk).update(updated_at=timezone.now())
        record_audit("activity.create", "activity", activity.pk, actor=actor)
        pipeline.activities_logged([activity.pk])
    return activity


def update_activity(
    activity: Activity, data: Mapping[str, Any], *, actor: Actor = None
) -> Activity:
    values = _clean_activity_fields(data, activity)
    with transaction.atomic():
        for name, value in values.items():
            setattr(activity, name, value)
        activity.updated_at = timezone.now()
        activity.save()
        record_audit(
            "activity.update", "activity", activity.pk, actor=actor, changes=_jsonable(values)
        )
    return activity


def delete_activity(activity: Activity, *, actor: Actor = None) -> None:
    with transaction.atomic():
        pk = activity.pk
        activity.delete()
        record_audit("activity.delete", "activity", pk, actor=actor)


# -- helpers ------------------------------------------------------------------------------------


def _notify_new_owner(contact: Contact, actor: Actor) -> None:
    """Email the contact's new owner once the assignment is committed (not when self-assigned)."""
    owner_id = contact.owner_id
    if owner_id is None or getattr(actor, "pk", None) == owner_id:
        return
    from embudo.crm.tasks import notify_owner  # here: importing a task sets up the task backend

    contact_id, assigned_at = contact.pk, contact.updated_at.isoformat()
    # robust: the assignment is committed either way; a queue outage is logged, not raised.
    transaction.on_commit(
        lambda: notify_owner.enqueue(contact_id, owner_id, assigned_at), robust=True
    )


def _funnel_rank(stage: str) -> int:
    return FUNNEL_ORDER.index(stage) if stage in FUNNEL_ORDER else -1


def _user(actor: Actor) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _jsonable(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, dt.date | dt.datetime) else v for k, v in changes.items()
    }
