"""The settings the handoff app keeps, as one table the API and the settings pages share:
each kind's model, its editable fields, and its name in URLs."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

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


@dataclass(frozen=True)
class SettingKind:
    slug: str  # in URLs: /leads/settings/<slug>/, /api/v1/handoff/<slug>
    model: type[models.Model]
    fields: tuple[str, ...]
    label: str | Promise
    help: str | Promise = ""

    @property
    def codename(self) -> str:
        return self.model._meta.model_name or ""

    def perm(self, action: str) -> str:
        return f"handoff.{action}_{self.codename}"


KINDS: dict[str, SettingKind] = {
    kind.slug: kind
    for kind in (
        SettingKind(
            "rules",
            AssignmentRule,
            ("name", "position", "active", "team", "countries", "condition"),
            _("Assignment rules"),
            _(
                "The first active rule that matches an MQL sends it to its team, where reps take "
                "turns (round robin) among those available and under capacity."
            ),
        ),
        SettingKind(
            "policies",
            SlaPolicy,
            (
                "name",
                "position",
                "active",
                "condition",
                "business_hours",
                "first_touch_minutes",
                "decision_minutes",
                "reassign_on_breach",
            ),
            _("SLA policies"),
            _("Per lead tier: first touch and accept/reject within so many business minutes."),
        ),
        SettingKind(
            "hours",
            BusinessHours,
            ("name", "time_zone", "weekdays", "opens_at", "closes_at"),
            _("Business hours"),
            _("Working days as numbers, Monday 0 to Sunday 6; times in the hours' time zone."),
        ),
        SettingKind(
            "holidays",
            Holiday,
            ("business_hours", "date", "name"),
            _("Holidays"),
            _("Days the SLA clock stops for one set of business hours."),
        ),
        SettingKind(
            "reasons",
            FeedbackReason,
            ("verdict", "name", "disqualifies", "bad_fit", "active", "position"),
            _("Rejection and recycle reasons"),
            _(
                "A rejection that disqualifies takes the lead out of the funnel; otherwise it "
                "goes back to nurture."
            ),
        ),
        SettingKind(
            "commitments",
            MarketingCommitment,
            (
                "period_kind",
                "period_start",
                "mql_volume",
                "quality_measure",
                "min_rate",
                "segment_name",
                "condition",
            ),
            _("Marketing commitments"),
            _("Marketing's promise per month or quarter: MQL volume and minimum quality."),
        ),
        SettingKind(
            "availability",
            RepAvailability,
            (
                "user",
                "takes_leads",
                "time_zone",
                "weekdays",
                "works_from",
                "works_until",
                "away_from",
                "away_until",
                "capacity",
            ),
            _("Rep availability"),
            _(
                "Who takes new leads when: working days (Monday 0 to Sunday 6) and hours in the "
                "rep's time zone, time away, and open MQLs at most. A rep without a row takes "
                "leads at any time."
            ),
        ),
        SettingKind(
            "teams",
            TeamRouting,
            ("team", "manager"),
            _("Team managers"),
            _("Who hears of a team's SLA breaches (else the team's sales managers)."),
        ),
    )
}
