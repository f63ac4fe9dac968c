"""Every write of scoring: models and rules (each change rescores everyone in the background),
and keeping contacts' scores current as events arrive and contacts change.

Rules and settings are validated before anything is written; a change bumps the model's
version, marks it "rescoring…" and enqueues the full rescore once the change commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.text import slugify

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.crm.models import Contact
from embudo.errors import ValidationFailed
from embudo.scoring import engine, queries
from embudo.scoring.models import (
    ContactScore,
    ModelStatus,
    RuleKind,
    ScoreRule,
    ScoringModel,
)

logger = logging.getLogger(__name__)

# Up to this many contacts are rescored inside the request that changed them; more go to a
# background task, so an import or a big batch of events never waits for scoring.
INLINE_CONTACTS = 200
BACKGROUND_CHUNK = 20_000

MODEL_FIELDS = (
    "key",
    "name",
    "description",
    "enabled",
    "half_life_days",
    "fit_cap",
    "engagement_cap",
    "total_cap",
    "band_a",
    "band_b",
    "band_c",
    "mql_fit",
    "mql_engagement",
    "mql_total",
)
RULE_FIELDS = ("kind", "name", "condition", "points", "repeatable", "max_points", "position")
# Settings that change no stored number (a name, a band): no rescore needed for them.
COSMETIC = {"name", "description"}


# -- models -------------------------------------------------------------------------------------


def _clean_model(data: Mapping[str, Any], model: ScoringModel | None) -> dict[str, Any]:
    unknown = set(data) - set(MODEL_FIELDS)
    errors: dict[str, list[str]] = {name: ["unknown field"] for name in sorted(unknown)}
    values = {name: data[name] for name in MODEL_FIELDS if name in data}
    if model is None or "key" in values:
        key = slugify(str(values.get("key") or values.get("name") or ""))[:64]
        if not key:
            errors["key"] = ["a scoring model needs a key (letters, digits, - or _)"]
        elif ScoringModel.objects.filter(key=key).exclude(pk=model.pk if model else 0).exists():
            errors["key"] = [f"another scoring model already has the key {key!r}"]
        values["key"] = key
    if model is None or "name" in values:
        values["name"] = str(values.get("name") or "").strip() or values.get("key", "")
        if not values["name"]:
            errors["name"] = ["a scoring model needs a name"]
    for name in ("half_life_days", "band_a", "band_b", "band_c"):
        if name in values:
            number = _number(values[name], name, errors, required=True)
            if number is not None:
                values[name] = number
    for name in (
        "fit_cap",
        "engagement_cap",
        "total_cap",
        "mql_fit",
        "mql_engagement",
        "mql_total",
    ):
        if name in values:
            values[name] = _number(values[name], name, errors, required=False)
    half_life = values.get("half_life_days")
    if half_life is not None and "half_life_days" not in errors and not 0.01 <= half_life <= 3650:
        errors["half_life_days"] = ["the half-life is a number of days between 0.01 and 3650"]
    bands = {
        name: values.get(name, getattr(model, name, None) if model else None)
        for name in ("band_a", "band_b", "band_c")
    }
    if not any(f"band_{x}" in errors for x in "abc"):
        a = bands["band_a"] if bands["band_a"] is not None else ScoringModel.band_a.field.default
        b = bands["band_b"] if bands["band_b"] is not None else ScoringModel.band_b.field.default
        c = bands["band_c"] if bands["band_c"] is not None else ScoringModel.band_c.field.default
        if not a > b > c:
            errors["band_a"] = [
                f"bands must fall from A to C: A {a:g} > B {b:g} > C {c:g} is false"
            ]
    if "enabled" in values and not isinstance(values["enabled"], bool):
        errors["enabled"] = ["true or false"]
    if errors:
        raise ValidationFailed(errors)
    return values


def _number(raw: Any, name: str, errors: dict[str, list[str]], *, required: bool) -> float | None:
    if raw is None or raw == "":
        if required:
            errors[name] = ["a number is required"]
        return None
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = float(raw)
    except (TypeError, ValueError):
        errors[name] = [f"{raw!r} is not a number"]
        return None
    if value != value or value in (float("inf"), float("-inf")):
        errors[name] = [f"{raw!r} is not a finite number"]
        return None
    return value


def create_model(data: Mapping[str, Any], *, actor: Actor = None) -> ScoringModel:
    values = _clean_model(data, None)
    with transaction.atomic():
        model = ScoringModel.objects.create(**values)
        record_audit("scoring.model.create", "scoringmodel", model.pk, actor=actor, changes=values)
        _schedule_rescore(model)
    return model


def update_model(
    model: ScoringModel, data: Mapping[str, Any], *, actor: Actor = None
) -> ScoringModel:
    values = _clean_model(data, model)
    with transaction.atomic():
        changes = {k: v for k, v in values.items() if getattr(model, k) != v}
        if not changes:
            return model
        for name, value in changes.items():
            setattr(model, name, value)
        model.updated_at = timezone.now()
        model.save()
        record_audit("scoring.model.update", "scoringmodel", model.pk, actor=actor, changes=changes)
        if set(changes) - COSMETIC and model.enabled:
            _schedule_rescore(model)
    return model


def delete_model(model: ScoringModel, *, actor: Actor = None) -> None:
    with transaction.atomic():
        pk, key = model.pk, model.key
        model.delete()
        record_audit("scoring.model.delete", "scoringmodel", pk, actor=actor, changes={"key": key})


# -- rules --------------------------------------------------------------------------------------


def _clean_rule(
    data: Mapping[str, Any], model: ScoringModel, rule: ScoreRule | None
) -> dict[str, Any]:
    unknown = set(data) - set(RULE_FIELDS)
    errors: dict[str, list[str]] = {name: ["unknown field"] for name in sorted(unknown)}
    values = {name: data[name] for name in RULE_FIELDS if name in data}
    kind = values.get("kind", rule.kind if rule else None)
    if kind not in RuleKind.values:
        errors["kind"] = [f"{kind!r} is not one of {', '.join(RuleKind.values)}"]
    if rule is None or "name" in values:
        values["name"] = str(values.get("name") or "").strip()[:128]
        if not values["name"]:
            errors["name"] = ["a rule needs a name: it is the reason shown beside a score"]
    if rule is None or "points" in values:
        points = _number(values.get("points"), "points", errors, required=True)
        if points is not None:
            if points == 0:
                errors["points"] = ["a rule must add or take away points (not 0)"]
            values["points"] = points
    if "max_points" in values:
        values["max_points"] = _number(values["max_points"], "max_points", errors, required=False)
        if values["max_points"] is not None and values["max_points"] <= 0:
            errors["max_points"] = [
                "the cap is the most points (in size) the rule may give: above 0"
            ]
    if "repeatable" in values and not isinstance(values["repeatable"], bool):
        errors["repeatable"] = ["true or false"]
    if "position" in values:
        try:
            values["position"] = max(0, int(values["position"]))
        except (TypeError, ValueError):
            errors["position"] = [f"{values['position']!r} is not a whole number"]
    if kind == RuleKind.FIT and (values.get("repeatable") or values.get("max_points")):
        errors["repeatable"] = ["only engagement rules (events) repeat or carry a cap"]
    if kind in RuleKind.values and (rule is None or "condition" in values or "kind" in values):
        condition = values.get("condition", rule.condition if rule else None)
        if problem := condition_problem(kind, condition):
            errors["condition"] = [problem]
    if errors:
        raise ValidationFailed(errors)
    return values


def condition_problem(kind: str, condition: Any) -> str | None:
    """What is wrong with a rule's condition, or None: fit rules take a contact condition,
    engagement rules an event filter, in the segments' condition language."""
    from embudo.segments.conditions import ConditionError

    if condition in (None, "", {}, []):
        return "a rule needs a condition"
    probe = engine.Rule(0, "", kind, condition, 1.0, False, None)
    try:
        if kind == RuleKind.FIT:
            engine.fit_q(probe, timezone.now())
        else:
            engine.event_q(probe, timezone.now())
    except ConditionError as error:
        return str(error)
    return None


def add_rule(model: ScoringModel, data: Mapping[str, Any], *, actor: Actor = None) -> ScoreRule:
    values = _clean_rule(data, model, None)
    if "position" not in values:
        values["position"] = ScoreRule.objects.filter(model=model).count()
    with transaction.atomic():
        rule = ScoreRule.objects.create(model=model, **values)
        record_audit("scoring.rule.create", "scorerule", rule.pk, actor=actor, changes=values)
        _schedule_rescore(model)
    return rule


def update_rule(rule: ScoreRule, data: Mapping[str, Any], *, actor: Actor = None) -> ScoreRule:
    values = _clean_rule(data, rule.model, rule)
    with transaction.atomic():
        changes = {k: v for k, v in values.items() if getattr(rule, k) != v}
        if not changes:
            return rule
        for name, value in changes.items():
            setattr(rule, name, value)
        if rule.kind == RuleKind.FIT:
            rule.repeatable, rule.max_points = False, None
        rule.updated_at = timezone.now()
        rule.save()
        record_audit("scoring.rule.update", "scorerule", rule.pk, actor=actor, changes=changes)
        _schedule_rescore(rule.model)
    return rule


def delete_rule(rule: ScoreRule, *, actor: Actor = None) -> None:
    with transaction.atomic():
        pk, model = rule.pk, rule.model
        rule.delete()
        record_audit(
            "scoring.rule.delete", "scorerule", pk, actor=actor, changes={"name": rule.name}
        )
        _schedule_rescore(model)


def replace_rules(
    model: ScoringModel, rules: list[Mapping[str, Any]], *, actor: Actor = None
) -> list[ScoreRule]:
    """Swap a model's whole rule set at once (all valid, or nothing changes)."""
    cleaned: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for i, data in enumerate(rules):
        try:
            cleaned.append({"position": i, **_clean_rule(data, model, None)})
        except ValidationFailed as failed:
            errors.update({f"rules.{i}.{k}": v for k, v in failed.errors.items()})
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        ScoreRule.objects.filter(model=model).delete()
        created = [ScoreRule.objects.create(model=model, **values) for values in cleaned]
        record_audit(
            "scoring.rules.replace",
            "scoringmodel",
            model.pk,
            actor=actor,
            changes={"rules": len(created)},
        )
        _schedule_rescore(model)
    return created


# -- rescoring ----------------------------------------------------------------------------------


def _schedule_rescore(model: ScoringModel) -> None:
    """Mark the model "rescoring…" under a new version and rescore it once this commits."""
    ScoringModel.objects.filter(pk=model.pk).update(
        version=model.version + 1, status=ModelStatus.RESCORING, updated_at=timezone.now()
    )
    model.refresh_from_db(fields=["version", "status", "updated_at"])
    model_id, version = model.pk, model.version

    def enqueue() -> None:
        from embudo.scoring.tasks import rescore_model_task

        rescore_model_task.enqueue(model_id, version)

    transaction.on_commit(enqueue, robust=True)


def request_rescore(model: ScoringModel, *, actor: Actor = None) -> None:
    """Rescore everyone under ``model`` in the background (after the caller's commit)."""
    with transaction.atomic():
        record_audit("scoring.model.rescore", "scoringmodel", model.pk, actor=actor)
        _schedule_rescore(model)


def rescore_model(
    model: ScoringModel, *, version: int | None = None, now: dt.datetime | None = None
) -> engine.Outcome | None:
    """Recompute everyone under ``model`` now. With ``version`` (from a queued task), a model
    changed since then is left to the newer task. A failure keeps every previous score and
    marks the model failed with the reason."""
    model.refresh_from_db()
    if version is not None and model.version != version:
        return None
    try:
        outcome = engine.rescore_model(model, now=now)
    except Exception as error:
        logger.exception("rescoring model %s failed", model.key)
        ScoringModel.objects.filter(pk=model.pk, version=model.version).update(
            status=ModelStatus.FAILED, last_error=f"{type(error).__name__}: {error}"[:1000]
        )
        raise
    ScoringModel.objects.filter(pk=model.pk, version=model.version).update(
        status=ModelStatus.READY, rescored_at=timezone.now(), last_error=""
    )
    return outcome


def rescore_contacts(contact_ids: Iterable[int], *, cause: str = "update") -> None:
    """Bring these contacts' scores up to date: inline for a few, in the background for many."""
    ids = sorted(set(contact_ids))
    if not ids:
        return
    from embudo.scoring.tasks import rescore_contacts_task

    if len(ids) <= INLINE_CONTACTS:
        try:
            engine.rescore_contacts(ids, cause=cause)
            return
        except DatabaseError:
            # The change that called us is committed already; a busy database must not turn
            # it into an error. The worker retries the rescore instead.
            logger.exception("rescoring contacts %s inline failed; queued instead", ids[:10])

    for start in range(0, len(ids), BACKGROUND_CHUNK):
        rescore_contacts_task.enqueue(ids[start : start + BACKGROUND_CHUNK], cause)


# -- reactions (run by embudo.pipeline) ---------------------------------------------------------


def condition_fields() -> frozenset[str]:
    """The fields of the condition language the enabled models' rules read (``event`` for
    behaviour); none when no model is enabled, so a batch of events then costs no rescoring.
    Asked after every committed change: the first question is the cheapest."""
    if not queries.any_model_enabled():
        return frozenset()
    return frozenset().union(*(plan.reads for plan in engine.enabled_plans()))


def before_merge(primary: Contact, duplicate: Contact) -> None:
    """The duplicate's current scores go (its history moves over with the merge); the primary
    is rescored once the merge commits."""
    ContactScore.objects.filter(contact=duplicate).delete()
