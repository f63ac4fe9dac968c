"""Every write to pipelines, deals, currencies, teams and goals.

Each action validates before it writes (raising :class:`ValidationFailed` with per-field
messages), owns its transaction, keeps the deal's stage history, moves the deal's contacts
through the lifecycle (a new deal makes them opportunities, a won deal customers) and records the
audit entry.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Round
from django.utils import timezone

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.crm import actions as crm
from embudo.crm.models import Company, Contact, LifecycleStage, TransitionCause
from embudo.deals.models import (
    Deal,
    DealSettings,
    DealStageChange,
    DealStatus,
    ExchangeRate,
    ForecastCategory,
    Goal,
    LostReason,
    Pipeline,
    ProductLine,
    SalesTeam,
    Stage,
    StageKind,
    TeamMembership,
)
from embudo.deals.periods import Period
from embudo.errors import ValidationFailed
from embudo.pipeline import deal_stage_changed

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")
_CURRENCY = re.compile(r"^[A-Z]{3}$")

# Contacts at these stages become opportunities when a deal is opened for them; customers and
# evangelists keep their stage (a second deal with a customer is an upsell, not a demotion).
_BEFORE_OPPORTUNITY = {
    LifecycleStage.SUBSCRIBER,
    LifecycleStage.LEAD,
    LifecycleStage.MQL,
    LifecycleStage.SQL,
    LifecycleStage.DISQUALIFIED,
}
_BEFORE_CUSTOMER = set(LifecycleStage.values) - {LifecycleStage.CUSTOMER, LifecycleStage.EVANGELIST}

DEFAULT_STAGES: tuple[tuple[str, str, str, str], ...] = (
    # name, probability, kind, forecast category
    ("Qualified", "0.10", StageKind.OPEN, ForecastCategory.PIPELINE),
    ("Discovery", "0.20", StageKind.OPEN, ForecastCategory.PIPELINE),
    ("Proposal", "0.50", StageKind.OPEN, ForecastCategory.BEST_CASE),
    ("Negotiation", "0.80", StageKind.OPEN, ForecastCategory.COMMIT),
    ("Won", "1", StageKind.WON, ForecastCategory.CLOSED_WON),
    ("Lost", "0", StageKind.LOST, ForecastCategory.OMITTED),
)
DEFAULT_LOST_REASONS = ("Price", "Chose a competitor", "No budget", "No decision", "Timing")

DEAL_FIELDS = (
    "name",
    "external_id",
    "pipeline_id",
    "stage_id",
    "amount",
    "currency",
    "expected_close_date",
    "owner_id",
    "company_id",
    "contact_ids",
    "product_line_id",
    "lost_reason_id",
    "lost_note",
    "forecast_category",
    "created_at",
    "engaged_at",
    "closed_at",
)
# Fields a deal's edit may change; stage, status and closing go through the stage actions.
EDITABLE_FIELDS = (
    "name",
    "external_id",
    "amount",
    "currency",
    "expected_close_date",
    "owner_id",
    "company_id",
    "contact_ids",
    "product_line_id",
    "forecast_category",
)


# -- currencies ---------------------------------------------------------------------------------


def reporting_currency() -> str:
    settings_row = DealSettings.objects.first()
    return settings_row.reporting_currency if settings_row else DealSettings().reporting_currency


def clean_currency(raw: Any, field: str = "currency") -> str:
    code = str(raw or "").strip().upper()
    if not _CURRENCY.match(code):
        raise ValidationFailed.one(field, f"{raw!r} is not a three-letter currency code (ISO 4217)")
    return code


def rate_for(currency: str, field: str = "currency") -> Decimal:
    """Units of the reporting currency per unit of ``currency``; a clear error if none is set."""
    base = reporting_currency()
    if currency == base:
        return Decimal(1)
    rate = ExchangeRate.objects.filter(currency=currency).values_list("rate", flat=True).first()
    if rate is None:
        raise ValidationFailed.one(
            field,
            f"no exchange rate from {currency} to {base} (the reporting currency); "
            f"an admin sets it on the exchange rates page or with "
            f"PUT /api/v1/exchange-rates/{currency}",
        )
    return rate


def to_reporting(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


@transaction.atomic
def set_exchange_rate(currency: str, rate: Any, *, actor: Actor = None) -> ExchangeRate:
    """Set a rate and re-express the open deals in that currency (closed ones keep theirs)."""
    code = clean_currency(currency)
    if code == reporting_currency():
        raise ValidationFailed.one(
            "currency", f"{code} is the reporting currency: its rate is always 1"
        )
    value = _decimal(rate, "rate", positive=True)
    if value.as_tuple().exponent < -8 or value >= Decimal("1e10"):  # type: ignore[operator]
        raise ValidationFailed.one("rate", f"{rate!r} has more than 8 decimals or is too large")
    exchange, _created = ExchangeRate.objects.update_or_create(
        currency=code,
        defaults={"rate": value, "updated_at": timezone.now(), "updated_by": crm._user(actor)},
    )
    Deal.objects.filter(currency=code, status=DealStatus.OPEN).update(
        exchange_rate=value,
        amount_reporting=Round(F("amount") * value, 2),
        updated_at=timezone.now(),
    )
    record_audit(
        "exchange_rate.set", "exchange_rate", code, actor=actor, changes={"rate": str(value)}
    )
    return exchange


@transaction.atomic
def set_reporting_currency(currency: str, *, actor: Actor = None) -> DealSettings:
    """Choose the reporting currency; only before the first deal, since every stored amount and
    exchange rate is expressed in it."""
    code = clean_currency(currency)
    row, _created = DealSettings.objects.get_or_create(pk=1)
    if row.reporting_currency == code:
        return row
    if Deal.objects.exists() or Goal.objects.exists():
        raise ValidationFailed.one(
            "currency",
            f"deals and goals are already expressed in {row.reporting_currency}; the reporting "
            "currency can only be changed before the first deal or goal",
        )
    ExchangeRate.objects.all().delete()
    row.reporting_currency = code
    row.updated_at = timezone.now()
    row.save()
    record_audit("deal_settings.currency", "deal_settings", 1, actor=actor, changes={"to": code})
    return row


# -- pipelines, stages and the editable lists ---------------------------------------------------


def default_pipeline() -> Pipeline:
    """The pipeline new deals go to when none is named; created with sensible stages once."""
    pipeline = Pipeline.objects.filter(is_default=True).first()
    if pipeline is not None:
        return pipeline
    with transaction.atomic():
        pipeline = Pipeline.objects.select_for_update().filter(is_default=True).first()
        if pipeline is None:
            first = Pipeline.objects.order_by("position", "id").first()
            if first is not None:
                Pipeline.objects.filter(pk=first.pk).update(is_default=True)
                first.is_default = True
                return first
            pipeline = create_pipeline(
                "Sales",
                [
                    {"name": n, "probability": p, "kind": k, "forecast_category": c}
                    for n, p, k, c in DEFAULT_STAGES
                ],
                is_default=True,
            )
        if not LostReason.objects.exists():
            LostReason.objects.bulk_create(
                LostReason(name=name, position=i) for i, name in enumerate(DEFAULT_LOST_REASONS)
            )
    return pipeline


def _clean_stage(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    name = str(data.get("name") or "").strip()
    if not name:
        errors[f"{where}.name"] = ["a stage needs a name"]
    kind = data.get("kind") or StageKind.OPEN
    if kind not in StageKind.values:
        errors[f"{where}.kind"] = [f"{kind!r} is not one of {', '.join(StageKind.values)}"]
    try:
        probability = _decimal(data.get("probability"), f"{where}.probability")
        if not Decimal(0) <= probability <= Decimal(1):
            raise ValidationFailed.one(
                f"{where}.probability",
                f"{probability} is not a probability between 0 and 1 (0.25 means 25 %)",
            )
    except ValidationFailed as failed:
        errors.update(failed.errors)
        probability = Decimal(0)
    if kind == StageKind.WON and probability != 1:
        errors[f"{where}.probability"] = ["a won stage has probability 1"]
    if kind == StageKind.LOST and probability != 0:
        errors[f"{where}.probability"] = ["a lost stage has probability 0"]
    default_category = {
        StageKind.WON: ForecastCategory.CLOSED_WON,
        StageKind.LOST: ForecastCategory.OMITTED,
    }.get(kind, ForecastCategory.PIPELINE)
    category = data.get("forecast_category") or default_category
    if category not in ForecastCategory.values:
        errors[f"{where}.forecast_category"] = [
            f"{category!r} is not one of {', '.join(ForecastCategory.values)}"
        ]
    elif kind != StageKind.OPEN and category != default_category:
        errors[f"{where}.forecast_category"] = [f"a {kind} stage is in {default_category}"]
    elif kind == StageKind.OPEN and category in (
        ForecastCategory.CLOSED_WON,
        ForecastCategory.OMITTED,
    ):
        errors[f"{where}.forecast_category"] = [f"an open stage cannot be {category}"]
    if errors:
        raise ValidationFailed(errors)
    return {"name": name, "kind": kind, "probability": probability, "forecast_category": category}


@transaction.atomic
def create_pipeline(
    name: str,
    stages: Sequence[Mapping[str, Any]],
    *,
    is_default: bool = False,
    actor: Actor = None,
) -> Pipeline:
    """A pipeline with its stages in the given order; it needs a won and a lost stage."""
    errors: dict[str, list[str]] = {}
    clean_name = str(name or "").strip()
    if not clean_name:
        errors["name"] = ["a pipeline needs a name"]
    elif Pipeline.objects.filter(name__iexact=clean_name).exists():
        errors["name"] = [f"a pipeline named {clean_name!r} already exists"]
    cleaned: list[dict[str, Any]] = []
    for i, stage in enumerate(stages):
        try:
            cleaned.append(_clean_stage(stage, f"stages.{i}"))
        except ValidationFailed as failed:
            errors.update(failed.errors)
    names = [s["name"].lower() for s in cleaned]
    if len(set(names)) != len(names):
        errors["stages"] = ["two stages share a name"]
    kinds = [s["kind"] for s in cleaned]
    if not errors and (
        StageKind.OPEN not in kinds or StageKind.WON not in kinds or StageKind.LOST not in kinds
    ):
        errors["stages"] = ["a pipeline needs at least one open, one won and one lost stage"]
    if errors:
        raise ValidationFailed(errors)
    if is_default:
        Pipeline.objects.filter(is_default=True).update(is_default=False)
    position = (
        Pipeline.objects.order_by("-position").values_list("position", flat=True).first()
    ) or 0
    pipeline = Pipeline.objects.create(
        name=clean_name, is_default=is_default, position=position + 1
    )
    Stage.objects.bulk_create(
        Stage(pipeline=pipeline, position=i, **stage) for i, stage in enumerate(cleaned)
    )
    record_audit("pipeline.create", "pipeline", pipeline.pk, actor=actor, changes={"name": name})
    return pipeline


@transaction.atomic
def update_stage(stage: Stage, data: Mapping[str, Any], *, actor: Actor = None) -> Stage:
    """Rename a stage or change its probability or forecast category (not its kind)."""
    unknown = set(data) - {"name", "probability", "forecast_category"}
    if unknown:
        raise ValidationFailed({name: ["unknown field"] for name in sorted(unknown)})
    merged = {
        "name": data.get("name", stage.name),
        "probability": data.get("probability", stage.probability),
        "forecast_category": data.get("forecast_category", stage.forecast_category),
        "kind": stage.kind,
    }
    try:
        cleaned = _clean_stage(merged, "stage")
    except ValidationFailed as failed:
        raise ValidationFailed(
            {k.removeprefix("stage."): v for k, v in failed.errors.items()}
        ) from None
    clash = (
        Stage.objects.filter(pipeline_id=stage.pipeline_id, name__iexact=cleaned["name"])
        .exclude(pk=stage.pk)
        .exists()
    )
    if clash:
        raise ValidationFailed.one(
            "name", f"the pipeline already has a stage named {cleaned['name']!r}"
        )
    old_category = stage.forecast_category
    for name in ("name", "probability", "forecast_category"):
        setattr(stage, name, cleaned[name])
    stage.save()
    if cleaned["forecast_category"] != old_category:
        Deal.objects.filter(stage=stage, status=DealStatus.OPEN).update(
            forecast_category=cleaned["forecast_category"]
        )
    record_audit(
        "stage.update",
        "stage",
        stage.pk,
        actor=actor,
        changes={k: str(v) for k, v in cleaned.items()},
    )
    return stage


def _named(model: Any, name: str, label: str, actor: Actor, **extra: Any) -> Any:
    clean = str(name or "").strip()
    if not clean:
        raise ValidationFailed.one("name", f"a {label} needs a name")
    existing = model.objects.filter(name__iexact=clean).first()
    if existing is not None:
        return existing
    created = model.objects.create(name=clean, **extra)
    record_audit(
        f"{model._meta.model_name}.create", model._meta.model_name, created.pk, actor=actor
    )
    return created


@transaction.atomic
def create_lost_reason(name: str, *, actor: Actor = None) -> LostReason:
    position = LostReason.objects.count()
    return _named(LostReason, name, "lost reason", actor, position=position)


@transaction.atomic
def set_lost_reason_active(reason: LostReason, active: bool, *, actor: Actor = None) -> LostReason:
    reason.active = active
    reason.save(update_fields=["active"])
    record_audit(
        "lostreason.update", "lostreason", reason.pk, actor=actor, changes={"active": active}
    )
    return reason


@transaction.atomic
def create_product_line(name: str, *, actor: Actor = None) -> ProductLine:
    return _named(ProductLine, name, "product line", actor)


@transaction.atomic
def create_team(name: str, *, actor: Actor = None) -> SalesTeam:
    return _named(SalesTeam, name, "team", actor)


@transaction.atomic
def set_team(user: User, team: SalesTeam | None, *, actor: Actor = None) -> None:
    """Put a rep in a team (replacing their previous one), or take them out with ``None``."""
    TeamMembership.objects.filter(user=user).delete()
    if team is not None:
        TeamMembership.objects.create(user=user, team=team)
    record_audit(
        "team.member", "user", user.pk, actor=actor, changes={"team": team.pk if team else None}
    )


# -- deals --------------------------------------------------------------------------------------


def _decimal(raw: Any, field: str, *, positive: bool = False) -> Decimal:
    if isinstance(raw, bool) or raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValidationFailed.one(field, "a number is required")
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed.one(field, f"{raw!r} is not a number") from None
    if not value.is_finite():
        raise ValidationFailed.one(field, f"{raw!r} is not a number")
    if positive and value <= 0:
        raise ValidationFailed.one(field, f"{raw!r} must be greater than zero")
    return value


def _date(raw: Any, field: str) -> dt.date:
    if isinstance(raw, dt.datetime):
        return timezone.localtime(raw).date() if timezone.is_aware(raw) else raw.date()
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw).strip())
    except ValueError:
        raise ValidationFailed.one(field, f"{raw!r} is not a date (use YYYY-MM-DD)") from None


def _datetime(raw: Any, field: str) -> dt.datetime:
    if isinstance(raw, dt.datetime):
        value = raw
    elif isinstance(raw, dt.date):
        value = dt.datetime.combine(raw, dt.time())
    else:
        try:
            value = dt.datetime.fromisoformat(str(raw).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed.one(
                field, f"{raw!r} is not a date-time (use ISO 8601, e.g. 2026-05-31T10:00:00Z)"
            ) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def _clean_deal(data: Mapping[str, Any], deal: Deal | None) -> dict[str, Any]:
    """Check and normalise a deal's fields; every problem is reported at once, per field."""
    allowed = DEAL_FIELDS if deal is None else EDITABLE_FIELDS
    errors: dict[str, list[str]] = {
        name: ["unknown field" if name not in DEAL_FIELDS else "changed through the stage actions"]
        for name in sorted(set(data) - set(allowed))
    }
    values: dict[str, Any] = {}

    def check(field: str, fn: Any) -> None:
        if field not in data:
            return
        try:
            values[field] = fn(data[field])
        except ValidationFailed as failed:
            errors.update(failed.errors)

    if deal is None or "name" in data:
        name = str(data.get("name") or "").strip()
        if not name:
            errors["name"] = ["a deal needs a name"]
        values["name"] = name[:255]
    if "external_id" in data:
        external = str(data["external_id"] or "").strip() or None
        others = Deal.objects.filter(external_id=external)
        if deal is not None:
            others = others.exclude(pk=deal.pk)
        if external and others.exists():
            errors["external_id"] = [f"another deal already has external id {external}"]
        values["external_id"] = external
    if deal is None and "amount" not in data:
        errors["amount"] = ["a deal needs an amount"]
    check("amount", lambda raw: _amount(raw))
    if deal is None and not data.get("expected_close_date"):
        errors["expected_close_date"] = ["a deal needs an expected close date"]
    elif "expected_close_date" in data:
        check("expected_close_date", lambda raw: _date(raw, "expected_close_date"))
    currency = data.get("currency") or (deal.currency if deal else reporting_currency())
    try:
        values["currency"] = clean_currency(currency)
        values["exchange_rate"] = rate_for(values["currency"])
    except ValidationFailed as failed:
        errors.update(failed.errors)
    for field in ("created_at", "engaged_at", "closed_at"):
        if data.get(field) is not None:
            check(field, lambda raw, f=field: _datetime(raw, f))
    user_model = get_user_model()
    for field, model, label in (
        ("owner_id", user_model, "active user"),
        ("company_id", Company, "company"),
        ("product_line_id", ProductLine, "product line"),
        ("lost_reason_id", LostReason, "lost reason"),
    ):
        if data.get(field) is None:
            if field in data:
                values[field] = None
            continue
        query: Any = model.objects.filter(pk=data[field])
        if model is user_model:
            query = query.filter(is_active=True)
        if not _is_id(data[field]) or not query.exists():
            errors[field] = [f"no {label} with id {data[field]}"]
        else:
            values[field] = int(data[field])
    if "contact_ids" in data:
        raw_ids = data["contact_ids"] or []
        if not isinstance(raw_ids, list | tuple | set) or not all(_is_id(i) for i in raw_ids):
            errors["contact_ids"] = ["a list of contact ids is expected"]
        else:
            ids = sorted({int(i) for i in raw_ids})
            found = set(Contact.objects.filter(pk__in=ids).values_list("pk", flat=True))
            if missing := [i for i in ids if i not in found]:
                errors["contact_ids"] = [f"no contact with id {', '.join(map(str, missing))}"]
            values["contact_ids"] = ids
    if data.get("forecast_category"):
        category = data["forecast_category"]
        if category not in (
            ForecastCategory.PIPELINE,
            ForecastCategory.BEST_CASE,
            ForecastCategory.COMMIT,
        ):
            errors["forecast_category"] = [
                f"{category!r} is not one of pipeline, best_case, commit "
                "(closed won and omitted follow from winning or losing)"
            ]
        values["forecast_category"] = category
    if "lost_note" in data:
        values["lost_note"] = str(data["lost_note"] or "")[:255]
    if errors:
        raise ValidationFailed(errors)
    return values


def _amount(raw: Any) -> Decimal:
    value = _decimal(raw, "amount")
    if value < 0:
        raise ValidationFailed.one("amount", f"{raw!r} is negative; a deal's amount is 0 or more")
    if value > MAX_AMOUNT:
        raise ValidationFailed.one("amount", f"{raw!r} is larger than {MAX_AMOUNT}")
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _is_id(raw: Any) -> bool:
    if isinstance(raw, bool):
        return False
    if isinstance(raw, int):
        return raw > 0
    return isinstance(raw, str) and raw.isdigit()


def _resolve_stage(data: Mapping[str, Any]) -> tuple[Pipeline, Stage]:
    pipeline_id, stage_id = data.get("pipeline_id"), data.get("stage_id")
    if stage_id is not None:
        stage = (
            Stage.objects.select_related("pipeline").filter(pk=stage_id).first()
            if _is_id(stage_id)
            else None
        )
        if stage is None:
            raise ValidationFailed.one("stage_id", f"no stage with id {stage_id}")
        if pipeline_id is not None and str(stage.pipeline_id) != str(pipeline_id):
            raise ValidationFailed.one(
                "stage_id", f"stage {stage.name!r} is not in pipeline {pipeline_id}"
            )
        return stage.pipeline, stage
    if pipeline_id is not None:
        pipeline = Pipeline.objects.filter(pk=pipeline_id).first() if _is_id(pipeline_id) else None
        if pipeline is None:
            raise ValidationFailed.one("pipeline_id", f"no pipeline with id {pipeline_id}")
    else:
        pipeline = default_pipeline()
    stage = pipeline.stages.filter(kind=StageKind.OPEN).order_by("position", "id").first()
    if stage is None:
        raise ValidationFailed.one("pipeline_id", f"pipeline {pipeline.name!r} has no open stage")
    return pipeline, stage


def create_deal(
    data: Mapping[str, Any],
    *,
    actor: Actor = None,
    cause: str = TransitionCause.MANUAL,
    at: dt.datetime | None = None,
) -> Deal:
    """Open a deal; its contacts become opportunities (and customers if it is created won).

    ``data`` may name a won or lost stage, with ``closed_at``, to bring in another CRM's closed
    deals; a lost one needs ``lost_reason_id``.
    """
    if cause not in TransitionCause.values:
        raise ValidationFailed.one("cause", f"{cause!r} is not a transition cause")
    values = _clean_deal(data, None)
    pipeline, stage = _resolve_stage(data)
    now = at or timezone.now()
    created_at = values.pop("created_at", None) or now
    closed_at = values.pop("closed_at", None)
    engaged_at = values.pop("engaged_at", None)
    contact_ids = values.pop("contact_ids", [])
    errors: dict[str, list[str]] = {}
    if stage.kind == StageKind.OPEN:
        if closed_at is not None:
            errors["closed_at"] = [f"stage {stage.name!r} is open: an open deal has no close date"]
        status = DealStatus.OPEN
    else:
        closed_at = closed_at or now
        status = DealStatus.WON if stage.kind == StageKind.WON else DealStatus.LOST
        if closed_at < created_at:
            errors["closed_at"] = ["a deal cannot close before it was created"]
    if stage.kind == StageKind.LOST and not values.get("lost_reason_id"):
        errors["lost_reason_id"] = [_lost_reason_hint()]
    if stage.kind != StageKind.LOST and values.get("lost_reason_id"):
        errors["lost_reason_id"] = ["only a lost deal has a lost reason"]
    if errors:
        raise ValidationFailed(errors)
    if engaged_at is None:
        engaged_at = _engagement(contact_ids, created_at)
    category = (
        values.pop("forecast_category", None)
        if stage.kind == StageKind.OPEN
        else stage.forecast_category
    ) or stage.forecast_category
    values.pop("forecast_category", None)
    amount = values["amount"]
    with transaction.atomic():
        try:
            deal = Deal.objects.create(
                **values,
                pipeline=pipeline,
                stage=stage,
                status=status,
                forecast_category=category,
                amount_reporting=to_reporting(amount, values["exchange_rate"]),
                created_at=created_at,
                engaged_at=min(engaged_at, created_at),
                closed_at=closed_at,
                stage_changed_at=closed_at or created_at,
                updated_at=now,
            )
        except IntegrityError as error:
            raise ValidationFailed.one(
                "external_id", f"the deal clashes with another: {error}"
            ) from None
        DealStageChange.objects.create(
            deal=deal,
            from_stage=None,
            to_stage=stage,
            changed_at=created_at,
            actor=crm._user(actor),
        )
        deal_stage_changed([deal.pk])
        if contact_ids:
            deal.contacts.set(contact_ids)
            _contacts_to(contact_ids, LifecycleStage.OPPORTUNITY, created_at, cause, actor, deal)
            if status == DealStatus.WON:
                _contacts_to(contact_ids, LifecycleStage.CUSTOMER, closed_at, cause, actor, deal)
        record_audit(
            "deal.create",
            "deal",
            deal.pk,
            actor=actor,
            changes={"stage": stage.name, "amount": str(amount), "currency": deal.currency},
        )
    return deal


def _lost_reason_hint() -> str:
    names = list(LostReason.objects.filter(active=True).values_list("name", flat=True))
    listed = ", ".join(names) if names else "none defined yet: an admin adds them"
    return f"a lost deal needs a reason from the list ({listed})"


def _engagement(contact_ids: Iterable[int], created_at: dt.datetime) -> dt.datetime:
    """When sales work began: the earliest time any of the contacts became an SQL."""
    from django.db.models import Min

    from embudo.crm.models import LifecycleTransition

    ids = list(contact_ids)
    if not ids:
        return created_at
    first_sql = LifecycleTransition.objects.filter(
        contact_id__in=ids, to_stage=LifecycleStage.SQL, changed_at__lte=created_at
    ).aggregate(first=Min("changed_at"))["first"]
    return first_sql or created_at


def _contacts_to(
    contact_ids: Iterable[int],
    stage: str,
    when: dt.datetime,
    cause: str,
    actor: Actor,
    deal: Deal,
) -> None:
    movable = _BEFORE_OPPORTUNITY if stage == LifecycleStage.OPPORTUNITY else _BEFORE_CUSTOMER
    crm.move_contacts(
        stage,
        contact_ids,
        cause=cause,
        at=when,
        note=f"deal {deal.pk}: {deal.name}",
        actor=actor,
        only_from=movable,
    )


def update_deal(
    deal: Deal,
    data: Mapping[str, Any],
    *,
    actor: Actor = None,
    cause: str = TransitionCause.MANUAL,
) -> Deal:
    """Change a deal's details; contacts added to an open deal become opportunities."""
    values = _clean_deal(data, deal)
    contact_ids = values.pop("contact_ids", None)
    if "forecast_category" in values and deal.status != DealStatus.OPEN:
        raise ValidationFailed.one(
            "forecast_category", "a closed deal's forecast category follows its outcome"
        )
    if deal.status != DealStatus.OPEN and (values.get("currency", deal.currency) != deal.currency):
        raise ValidationFailed.one("currency", "a closed deal keeps the currency it closed in")
    if deal.status != DealStatus.OPEN:
        # A correction to a closed deal's amount keeps the rate it closed at.
        values["exchange_rate"] = deal.exchange_rate
    with transaction.atomic():
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if getattr(deal, name) != value:
                changes[name] = value
                setattr(deal, name, value)
        deal.amount_reporting = to_reporting(deal.amount, deal.exchange_rate)
        if contact_ids is not None:
            before = set(deal.contacts.values_list("pk", flat=True))
            if set(contact_ids) != before:
                deal.contacts.set(contact_ids)
                changes["contact_ids"] = contact_ids
                added = sorted(set(contact_ids) - before)
                if added:
                    now = timezone.now()
                    _contacts_to(added, LifecycleStage.OPPORTUNITY, now, cause, actor, deal)
                    if deal.status == DealStatus.WON:
                        _contacts_to(added, LifecycleStage.CUSTOMER, now, cause, actor, deal)
        if changes:
            deal.updated_at = timezone.now()
            deal.save()
            record_audit("deal.update", "deal", deal.pk, actor=actor, changes=_jsonable(changes))
    return deal


def move_deal_stage(
    deal: Deal,
    stage: Stage,
    *,
    actor: Actor = None,
    cause: str = TransitionCause.MANUAL,
    at: dt.datetime | None = None,
    lost_reason: LostReason | None = None,
    lost_note: str = "",
) -> DealStageChange | None:
    """Move a deal to ``stage`` (of its pipeline or another). A won stage wins it (its contacts
    become customers), a lost one loses it (a reason is required), an open one reopens a closed
    deal. Moving to the stage it stands at records nothing and returns None."""
    if stage.pk == deal.stage_id:
        return None
    when = at or timezone.now()
    errors: dict[str, list[str]] = {}
    if stage.kind == StageKind.LOST:
        if lost_reason is None:
            errors["lost_reason"] = [_lost_reason_hint()]
        elif not lost_reason.active:
            errors["lost_reason"] = [f"{lost_reason.name!r} is no longer in use"]
    elif lost_reason is not None:
        errors["lost_reason"] = [f"stage {stage.name!r} is not a lost stage"]
    if stage.kind != StageKind.OPEN and when < deal.created_at:
        errors["at"] = ["a deal cannot close before it was created"]
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        locked = Deal.objects.select_for_update().get(pk=deal.pk)
        previous = Stage.objects.get(pk=locked.stage_id)
        change = DealStageChange.objects.create(
            deal=locked,
            from_stage=previous,
            to_stage=stage,
            changed_at=when,
            actor=crm._user(actor),
        )
        locked.pipeline_id = stage.pipeline_id
        locked.stage = stage
        locked.stage_changed_at = when
        locked.forecast_category = stage.forecast_category
        if stage.kind == StageKind.OPEN:
            if locked.status != DealStatus.OPEN:
                # Reopened: it is live again, so it follows today's exchange rate.
                locked.exchange_rate = rate_for(locked.currency)
                locked.amount_reporting = to_reporting(locked.amount, locked.exchange_rate)
            locked.status = DealStatus.OPEN
            locked.closed_at = None
            locked.lost_reason = None
            locked.lost_note = ""
        else:
            locked.status = DealStatus.WON if stage.kind == StageKind.WON else DealStatus.LOST
            locked.closed_at = when
            locked.lost_reason = lost_reason if stage.kind == StageKind.LOST else None
            locked.lost_note = lost_note[:255] if stage.kind == StageKind.LOST else ""
        locked.updated_at = timezone.now()
        locked.save()
        deal_stage_changed([locked.pk])
        if locked.status == DealStatus.WON:
            ids = list(locked.contacts.values_list("pk", flat=True))
            _contacts_to(ids, LifecycleStage.CUSTOMER, when, cause, actor, locked)
        record_audit(
            "deal.stage",
            "deal",
            locked.pk,
            actor=actor,
            changes={
                "from": previous.name,
                "to": stage.name,
                **({"lost_reason": lost_reason.name} if lost_reason else {}),
            },
        )
    for name in ("pipeline_id", "stage_id", "status", "closed_at", "stage_changed_at"):
        setattr(deal, name, getattr(locked, name))
    for name in ("forecast_category", "lost_reason_id", "lost_note", "exchange_rate"):
        setattr(deal, name, getattr(locked, name))
    deal.amount_reporting = locked.amount_reporting
    deal.stage = stage
    return change


def _closing_stage(deal: Deal, kind: str) -> Stage:
    stage = (
        Stage.objects.filter(pipeline_id=deal.pipeline_id, kind=kind)
        .order_by("position", "id")
        .first()
    )
    if stage is None:
        raise ValidationFailed.one("stage", f"the deal's pipeline has no {kind} stage")
    return stage


def win_deal(
    deal: Deal,
    *,
    actor: Actor = None,
    cause: str = TransitionCause.MANUAL,
    at: dt.datetime | None = None,
) -> Deal:
    """Mark a deal won: it moves to its pipeline's won stage and its contacts become customers."""
    if deal.status == DealStatus.WON:
        raise ValidationFailed.one("status", "the deal is already won")
    move_deal_stage(deal, _closing_stage(deal, StageKind.WON), actor=actor, cause=cause, at=at)
    return deal


def lose_deal(
    deal: Deal,
    reason: LostReason | None,
    *,
    note: str = "",
    actor: Actor = None,
    at: dt.datetime | None = None,
) -> Deal:
    """Mark a deal lost with a reason from the editable list."""
    if deal.status == DealStatus.LOST:
        raise ValidationFailed.one("status", "the deal is already lost")
    move_deal_stage(
        deal,
        _closing_stage(deal, StageKind.LOST),
        actor=actor,
        at=at,
        lost_reason=reason,
        lost_note=note,
    )
    return deal


def delete_deal(deal: Deal, *, actor: Actor = None) -> None:
    with transaction.atomic():
        pk = deal.pk
        deal.delete()
        record_audit("deal.delete", "deal", pk, actor=actor)


# -- goals --------------------------------------------------------------------------------------


def set_goal(
    period: Period,
    amount: Any,
    *,
    team: SalesTeam | None = None,
    owner: Any = None,
    actor: Actor = None,
) -> Goal:
    """Set (or replace) the revenue target for a period, company-wide, for a team or for a rep."""
    value = _decimal(amount, "amount")
    if value <= 0:
        raise ValidationFailed.one(
            "amount", f"a revenue goal must be greater than zero (got {amount})"
        )
    if value > MAX_AMOUNT:
        raise ValidationFailed.one("amount", f"{amount} is larger than {MAX_AMOUNT}")
    if team is not None and owner is not None:
        raise ValidationFailed.one("team", "a goal is for a team or for a rep, not both")
    value = value.quantize(CENT, rounding=ROUND_HALF_UP)
    with transaction.atomic():
        goal, created = Goal.objects.update_or_create(
            period_kind=period.kind,
            period_start=period.start,
            team=team,
            owner=owner,
            defaults={"amount": value, "updated_at": timezone.now()},
            create_defaults={
                "amount": value,
                "created_by": crm._user(actor),
                "updated_at": timezone.now(),
            },
        )
        record_audit(
            "goal.set",
            "goal",
            goal.pk,
            actor=actor,
            changes={"period": period.label, "amount": str(value), "created": created},
        )
    return goal


def delete_goal(goal: Goal, *, actor: Actor = None) -> None:
    with transaction.atomic():
        pk = goal.pk
        goal.delete()
        record_audit("goal.delete", "goal", pk, actor=actor)


# -- helpers ------------------------------------------------------------------------------------


def _jsonable(changes: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if isinstance(value, dt.date | dt.datetime):
            out[key] = value.isoformat()
        elif isinstance(value, Decimal):
            out[key] = str(value)
        else:
            out[key] = value
    return out
