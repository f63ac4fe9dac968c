"""Handing MQLs to sales: route each to a rep or the fallback queue, start its SLA clocks, tell
the owners (or the managers), and move leads between reps.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import models, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.accounts.roles import ADMIN, SALES, SALES_MANAGER, role_of
from embudo.crm import actions as crm
from embudo.crm.models import Contact, LeadStatus, LifecycleStage
from embudo.errors import ValidationFailed
from embudo.handoff import assignment
from embudo.handoff.actions.clocks import _deadlines, _schedule, _tiers
from embudo.handoff.models import Handoff, Notification, TeamRouting


def hand_off(
    contact_ids: Iterable[int],
    *,
    at: dt.datetime | None = None,
    actor: Actor = None,
    exclude_owner: Mapping[int, int] | None = None,
) -> list[Handoff]:
    """Give each MQL among ``contact_ids`` without an open handoff to a rep (or the fallback
    queue), start its SLA clocks, and tell the owners (or the managers, for the queue).

    Set-based: thousands of MQLs at once cost a few queries per rule, policy and owner.
    """
    now = at or timezone.now()
    wanted = sorted(set(contact_ids))
    with transaction.atomic():
        rows = list(
            Contact.objects.filter(pk__in=wanted, lifecycle_stage=LifecycleStage.MQL)
            .exclude(pk__in=Handoff.objects.filter(open=True).values("contact_id"))
            .order_by("pk")
            .values_list("pk", "original_source", "original_campaign", "owner_id")
        )
        if not rows:
            return []
        ids = [r[0] for r in rows]
        excluded = dict(exclude_owner or {})
        routes = assignment.route(ids, now, exclude_owner=excluded)
        # A contact no rule routes keeps the rep who already owns it, if any.
        sellers = set(
            get_user_model()
            .objects.filter(
                pk__in={r[3] for r in rows if r[3]},
                is_active=True,
                groups__name__in=[SALES, SALES_MANAGER, ADMIN],
            )
            .values_list("pk", flat=True)
        )
        for contact_id, _source, _campaign, owner_id in rows:
            route = routes[contact_id]
            if (
                route.rule_id is None
                and owner_id in sellers
                and excluded.get(contact_id) != owner_id
            ):
                routes[contact_id] = assignment.Route(None, owner_id, None, "kept its owner")
        policies = _tiers(ids, now)
        due: dict[int, tuple[dt.datetime, dt.datetime]] = {}
        for tier in {p.pk: p for p in policies.values()}.values():
            due[tier.pk] = _deadlines(tier, now)
        facts = tier_facts(ids)
        handoffs = []
        for contact_id, source, campaign, _owner in rows:
            route = routes[contact_id]
            policy = policies.get(contact_id)
            first_due, decision_due = due[policy.pk] if policy else (None, None)
            persona, band, score = facts.get(contact_id, ("", "", None))
            handoffs.append(
                Handoff(
                    contact_id=contact_id,
                    handed_off_at=now,
                    team_id=route.team_id,
                    owner_id=route.owner_id,
                    rule_id=route.rule_id,
                    policy=policy,
                    routing_note=route.note[:255],
                    source=source[:128],
                    campaign=campaign[:255],
                    persona=persona[:128],
                    score_band=band[:32],
                    score=score,
                    first_touch_due=first_due,
                    decision_due=decision_due,
                )
            )
        Handoff.objects.bulk_create(handoffs, batch_size=2_000)
        if len(handoffs) and handoffs[0].pk is None:  # a backend that returns no ids
            handoffs = list(
                Handoff.objects.filter(open=True, contact_id__in=ids, handed_off_at=now)
            )
        # A queued lead has no owner: the queue is where the managers pick it up.
        owners = {h.contact_id: h.owner_id for h in handoffs}
        crm.assign_owners(owners, lead_status=LeadStatus.NEW, actor=actor)
        queued = sum(1 for h in handoffs if h.owner_id is None)
        record_audit(
            "handoff.create",
            "handoff",
            actor=actor,
            changes={"contacts": len(handoffs), "queued": queued},
        )
        _tell_owners(handoffs, now)
        _tell_queue(handoffs, now)
        _schedule(handoffs)
    return handoffs


def tier_facts(contact_ids: Sequence[int]) -> dict[int, tuple[str, str, float | None]]:
    """Each contact's persona, score band and score (the first enabled scoring model's) at
    handoff, kept on the handoff for the inbox's order and the reports' breakdowns."""
    from embudo.scoring import queries as scoring_queries
    from embudo.segments.queries import persona_names

    personas = persona_names(contact_ids)
    facts: dict[int, tuple[str, str, float | None]] = {}
    models_ = list(scoring_queries.scoring_models().filter(enabled=True)[:1])
    scores = scoring_queries.scores_for(contact_ids, models=models_) if models_ else {}
    for contact_id in contact_ids:
        mine = scores.get(contact_id)
        score = mine[0] if mine else None
        facts[contact_id] = (
            personas.get(contact_id, ""),
            score.band if score else "",
            round(score.total, 2) if score else None,
        )
    return facts


def _notify(
    user_ids: Iterable[int],
    kind: str,
    message: str,
    *,
    contact_id: int | None = None,
    handoff_id: int | None = None,
    now: dt.datetime | None = None,
) -> list[Notification]:
    rows = [
        Notification(
            user_id=user_id,
            kind=kind,
            message=message[:500],
            contact_id=contact_id,
            handoff_id=handoff_id,
            created_at=now or timezone.now(),
        )
        for user_id in sorted(set(user_ids))
    ]
    Notification.objects.bulk_create(rows)
    ids = [n.pk for n in rows if n.pk is not None]
    if ids:
        from embudo.handoff.tasks import mail_notifications

        transaction.on_commit(partial(mail_notifications.enqueue, ids), robust=True)
    return rows


def _tell_owners(handoffs: Sequence[Handoff], now: dt.datetime) -> None:
    by_owner: dict[int, list[Handoff]] = defaultdict(list)
    for handoff in handoffs:
        if handoff.owner_id is not None:
            by_owner[handoff.owner_id].append(handoff)
    names = dict(
        Contact.objects.filter(
            pk__in=[h[0].contact_id for h in by_owner.values() if len(h) == 1]
        ).values_list("pk", "email")
    )
    for owner_id, theirs in by_owner.items():
        if len(theirs) == 1:
            handoff = theirs[0]
            due = handoff.first_touch_due
            lead = names.get(handoff.contact_id) or handoff.contact_id
            message = (
                _say(gettext_noop("New MQL for you: %(lead)s; first touch due %(due)s UTC"))
                % {"lead": lead, "due": f"{due:%Y-%m-%d %H:%M}"}
                if due
                else _say(gettext_noop("New MQL for you: %(lead)s")) % {"lead": lead}
            )
            _notify(
                [owner_id],
                "assigned",
                message,
                contact_id=handoff.contact_id,
                handoff_id=handoff.pk,
                now=now,
            )
        else:
            message = _say(gettext_noop("%(n)s new MQLs for you")) % {"n": len(theirs)}
            _notify([owner_id], "assigned", message, now=now)


def _tell_queue(handoffs: Sequence[Handoff], now: dt.datetime) -> None:
    """Leads nobody could take go to the fallback queue, and the managers hear of it."""
    queued = [h for h in handoffs if h.owner_id is None]
    if not queued:
        return
    reasons = sorted({h.routing_note for h in queued})
    message = _say(gettext_noop("%(n)s MQL(s) wait in the fallback queue: %(why)s")) % {
        "n": len(queued),
        "why": "; ".join(reasons),
    }
    first = queued[0] if len(queued) == 1 else None
    _notify(
        managers_of(None, None),
        "queued",
        message,
        contact_id=first.contact_id if first else None,
        handoff_id=first.pk if first else None,
        now=now,
    )


def _say(message: str) -> str:
    """A notice's words in the site's language (notices are stored, then read and mailed)."""
    with translation.override(settings.LANGUAGE_CODE):
        return gettext(message)


def managers_of(owner_id: int | None, team_id: int | None) -> list[int]:
    """Who hears of a breach or a queued lead: the team's manager, else its sales managers,
    else every sales manager, else the admins."""
    users = get_user_model().objects.filter(is_active=True)
    if team_id is None and owner_id is not None:
        team_id = (
            get_user_model()
            .objects.filter(pk=owner_id)
            .values_list("sales_team_membership__team_id", flat=True)
            .first()
        )
    if team_id is not None:
        routing = TeamRouting.objects.filter(team_id=team_id, manager__is_active=True).first()
        if routing and routing.manager_id:
            return [routing.manager_id]
        in_team = list(
            users.filter(
                sales_team_membership__team_id=team_id, groups__name=SALES_MANAGER
            ).values_list("pk", flat=True)
        )
        if in_team:
            return in_team
    managers = list(users.filter(groups__name=SALES_MANAGER).values_list("pk", flat=True))
    if managers:
        return managers
    return list(
        users.filter(models.Q(groups__name=ADMIN) | models.Q(is_superuser=True))
        .distinct()
        .values_list("pk", flat=True)
    )


def _seller(user_id: Any, field: str = "owner_id") -> Any:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ValidationFailed.one(field, f"no active user with id {user_id}")
    if role_of(user) not in {SALES, SALES_MANAGER, ADMIN}:
        raise ValidationFailed.one(field, f"{user.get_username()} has no sales role to own leads")
    return user


def reassign(handoff: Handoff, owner_id: Any, *, actor: Actor = None) -> Handoff:
    """Give an open handoff (or a queued one) to another rep; its SLA clocks keep running."""
    if not handoff.open:
        raise ValidationFailed.one("handoff", "this handoff is closed; only an open one moves")
    owner = _seller(owner_id)
    with transaction.atomic():
        previous = handoff.owner_id
        team_id = (
            get_user_model()
            .objects.filter(pk=owner.pk)
            .values_list("sales_team_membership__team_id", flat=True)
            .first()
        )
        handoff.owner_id = owner.pk
        handoff.team_id = team_id or handoff.team_id
        who = actor.get_username() if actor is not None else "the system"
        handoff.routing_note = f"reassigned by {who}"
        handoff.save(update_fields=["owner", "team", "routing_note"])
        crm.update_contact(handoff.contact, {"owner_id": owner.pk}, actor=actor)
        _notify(
            [owner.pk],
            "assigned",
            _say(gettext_noop("%(lead)s was reassigned to you")) % {"lead": handoff.contact},
            contact_id=handoff.contact_id,
            handoff_id=handoff.pk,
        )
        record_audit(
            "handoff.reassign",
            "handoff",
            handoff.pk,
            actor=actor,
            changes={"from": previous, "to": owner.pk},
        )
    return handoff


def release_leads(user: User, *, actor: Actor = None) -> int:
    """Route a departing rep's open leads again (to colleagues or the queue). Returns how many."""
    with transaction.atomic():
        handoffs = list(Handoff.objects.select_for_update().filter(open=True, owner=user))
        if not handoffs:
            return 0
        now = timezone.now()
        Handoff.objects.filter(pk__in=[h.pk for h in handoffs]).update(open=False, closed_at=now)
        exclude = {h.contact_id: user.pk for h in handoffs}
        hand_off(list(exclude), at=now, actor=actor, exclude_owner=exclude)
        record_audit(
            "handoff.release", "user", user.pk, actor=actor, changes={"handoffs": len(handoffs)}
        )
    return len(handoffs)
