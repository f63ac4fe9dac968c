"""The settings marketing and sales agree on: assignment rules, SLA policies, business hours
and holidays, feedback reasons, marketing commitments, rep availability and team routing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.errors import ValidationFailed
from embudo.handoff import assignment
from embudo.handoff.business_time import BusinessTimeError, WorkingWeek
from embudo.handoff.models import (
    AssignmentRule,
    BusinessHours,
    FeedbackReason,
    Holiday,
    MarketingCommitment,
    RepAvailability,
    SlaPolicy,
    TeamRouting,
)

SETTINGS_MODELS: tuple[type[models.Model], ...] = (
    AssignmentRule,
    SlaPolicy,
    BusinessHours,
    Holiday,
    FeedbackReason,
    MarketingCommitment,
    RepAvailability,
    TeamRouting,
)


def _check(record: models.Model) -> None:
    """The record's own invariants, plus what the database cannot check, as field errors."""
    errors: dict[str, list[str]] = {}
    try:
        record.full_clean()
    except DjangoValidationError as error:
        for field, messages in error.message_dict.items():
            errors[field] = [str(m) for m in messages]
    if isinstance(record, AssignmentRule | SlaPolicy | MarketingCommitment):
        try:
            record.condition = assignment.validate_condition(record.condition)
        except ValidationFailed as failed:
            errors.update(failed.errors)
    if isinstance(record, BusinessHours):
        try:
            WorkingWeek.of(record.time_zone, record.weekdays, record.opens_at, record.closes_at)
        except (BusinessTimeError, TypeError) as error:
            errors.setdefault("weekdays", []).append(str(error))
    if isinstance(record, SlaPolicy) and record.business_hours_id is None:
        errors.setdefault("business_hours", []).append(
            "an SLA policy needs business hours to count its deadlines in"
        )
    if isinstance(record, RepAvailability):
        try:
            assignment.zone(record.time_zone)
        except BusinessTimeError as error:
            errors.setdefault("time_zone", []).append(str(error))
        if bool(record.works_from) != bool(record.works_until):
            errors.setdefault("works_until", []).append("give both ends of the working hours")
        elif record.works_from and record.works_until and record.works_until <= record.works_from:
            errors.setdefault("works_until", []).append("working hours end before they start")
        if record.away_from and record.away_until and record.away_until < record.away_from:
            errors.setdefault("away_until", []).append("the absence ends before it starts")
    if isinstance(record, MarketingCommitment):
        start = record.period_start
        if start and (
            start.day != 1 or (record.period_kind == "quarter" and start.month not in (1, 4, 7, 10))
        ):
            errors.setdefault("period_start", []).append(
                "a period starts on the first day of its month (a quarter: Jan, Apr, Jul, Oct)"
            )
        if record.condition and not record.segment_name:
            errors.setdefault("segment_name", []).append("name the segment the condition picks")
    if errors:
        raise ValidationFailed(errors)


def save_setting(record: models.Model, *, actor: Actor = None) -> models.Model:
    """Create or update one settings record (rule, policy, hours, holiday, reason,
    commitment, availability), checked first; audited."""
    if not isinstance(record, SETTINGS_MODELS):
        raise TypeError(f"{type(record).__name__} is not a handoff setting")
    _check(record)
    created = record.pk is None
    if hasattr(record, "updated_at"):
        record.updated_at = timezone.now()
    try:
        with transaction.atomic():
            record.save()
            record_audit(
                f"handoff.{type(record).__name__.lower()}.{'create' if created else 'update'}",
                type(record).__name__.lower(),
                record.pk,
                actor=actor,
                changes={"name": str(record)},
            )
    except IntegrityError:
        raise ValidationFailed.one(
            "name", f"{type(record)._meta.verbose_name} {str(record)!r} already exists"
        ) from None
    return record


def delete_setting(record: models.Model, *, actor: Actor = None) -> None:
    """Delete a settings record; one still in use (hours under a policy, a reason on feedback)
    is refused with a field error, and a reason can be deactivated instead."""
    if not isinstance(record, SETTINGS_MODELS):
        raise TypeError(f"{type(record).__name__} is not a handoff setting")
    try:
        with transaction.atomic():
            pk = record.pk
            record.delete()
            record_audit(
                f"handoff.{type(record).__name__.lower()}.delete",
                type(record).__name__.lower(),
                pk,
                actor=actor,
            )
    except models.ProtectedError:
        raise ValidationFailed.one(
            "id", f"{record} is still in use; deactivate it or change what uses it first"
        ) from None


def set_availability(
    user: User, data: Mapping[str, Any], *, actor: Actor = None
) -> RepAvailability:
    """A rep's time zone, hours, absence and capacity (missing keys keep their value)."""
    record = RepAvailability.objects.filter(user=user).first() or RepAvailability(user=user)
    known = {
        "takes_leads",
        "time_zone",
        "weekdays",
        "works_from",
        "works_until",
        "away_from",
        "away_until",
        "capacity",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationFailed({name: ["unknown field"] for name in unknown})
    for name, value in data.items():
        setattr(record, name, value)
    save_setting(record, actor=actor)
    return record
