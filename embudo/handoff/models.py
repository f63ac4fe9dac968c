"""Assignment rules, rep availability, business hours, SLA policies, handoffs with their SLA
clocks, sales feedback with its reasons, marketing commitments and in-app notifications."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from embudo.crm.models import Contact
from embudo.deals.models import SalesTeam

# Monday=0 … Sunday=6, as datetime.weekday() counts.
WEEKDAYS = [0, 1, 2, 3, 4]


def default_weekdays() -> list[int]:
    return list(WEEKDAYS)


class BusinessHours(models.Model):
    """A working week in one time zone, with its holidays: the clock SLA deadlines run on."""

    name = models.CharField(max_length=128)
    time_zone = models.CharField(max_length=64, default="UTC")
    weekdays = models.JSONField(default=default_weekdays)
    opens_at = models.TimeField(default=dt.time(9))
    closes_at = models.TimeField(default=dt.time(18))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "business hours"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="business_hours_unique_name"),
            models.CheckConstraint(
                condition=models.Q(closes_at__gt=models.F("opens_at")),
                name="business_hours_open_before_close",
                violation_error_message=_("Business hours close before they open."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Holiday(models.Model):
    business_hours = models.ForeignKey(
        BusinessHours, on_delete=models.CASCADE, related_name="holidays"
    )
    date = models.DateField()
    name = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["business_hours", "date"], name="holiday_unique_day"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class RepAvailability(models.Model):
    """When a rep takes new leads and how many open MQLs they may hold (one row per rep)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lead_availability"
    )
    takes_leads = models.BooleanField(default=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    weekdays = models.JSONField(default=default_weekdays)
    # Empty: any hour of a working day.
    works_from = models.TimeField(null=True, blank=True)
    works_until = models.TimeField(null=True, blank=True)
    away_from = models.DateField(null=True, blank=True)
    away_until = models.DateField(null=True, blank=True)
    # Open MQLs (handoffs not yet decided) at most; empty: no limit.
    capacity = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "rep availability"

    def __str__(self) -> str:
        return f"availability of {self.user}"


class TeamRouting(models.Model):
    """What the handoff app knows of a sales team: its manager (breaches escalate to them)."""

    team = models.OneToOneField(SalesTeam, on_delete=models.CASCADE, related_name="routing")
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The round robin's turn: the rep who got the team's last lead.
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"routing of {self.team}"


class AssignmentRule(models.Model):
    """Routes matching MQLs to a team; the first active rule (by position) that matches wins."""

    name = models.CharField(max_length=128)
    position = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    team = models.ForeignKey(SalesTeam, on_delete=models.CASCADE, related_name="assignment_rules")
    # Territory: the company's country is one of these (empty: any country).
    countries = models.JSONField(default=list, blank=True)
    # A condition of the segments language over contacts (empty: every contact).
    condition = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="assignment_rule_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class SlaPolicy(models.Model):
    """Sales' promise for a lead tier: first touch and a verdict within so much business time."""

    name = models.CharField(max_length=128)
    position = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    # The tier: a condition of the segments language (score band, persona…); empty: every lead.
    condition = models.JSONField(null=True, blank=True)
    business_hours = models.ForeignKey(
        BusinessHours, on_delete=models.PROTECT, related_name="policies"
    )
    first_touch_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(60 * 24 * 60)]
    )
    decision_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(60 * 24 * 60)]
    )
    reassign_on_breach = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "SLA policies"
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(Lower("name"), name="sla_policy_unique_name")]

    def __str__(self) -> str:
        return self.name


class SlaState(models.TextChoices):
    PENDING = "pending", _("Pending")
    MET = "met", _("Met")
    BREACHED = "breached", _("Breached")


class Verdict(models.TextChoices):
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    RECYCLED = "recycled", _("Recycled")


class FeedbackReason(models.Model):
    """The admin-editable list a rejection's or a recycle's reason is chosen from."""

    verdict = models.CharField(
        max_length=16,
        choices=[(Verdict.REJECTED, _("Rejected")), (Verdict.RECYCLED, _("Recycled"))],
        default=Verdict.REJECTED,
    )
    name = models.CharField(max_length=128)
    # Where a rejected lead goes: out of the funnel, or back to marketing's nurture.
    disqualifies = models.BooleanField(default=True)
    # Counted as "bad fit" by the loop back (fit-rule suggestions).
    bad_fit = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["verdict", "position", "name"]
        constraints = [
            models.UniqueConstraint("verdict", Lower("name"), name="feedback_reason_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Handoff(models.Model):
    """One time an MQL went to sales, with its owner and SLA clocks (a contact handed off
    again, after a recycle or a reassignment on breach, gets another row)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="handoffs")
    handed_off_at = models.DateTimeField(default=timezone.now)
    team = models.ForeignKey(
        SalesTeam, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Empty while the lead waits in the fallback queue.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rule = models.ForeignKey(
        AssignmentRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    policy = models.ForeignKey(
        SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Why the owner got it (rule, round robin, fallback…), for the inbox's why-this-lead.
    routing_note = models.CharField(max_length=255, blank=True, default="")
    # Snapshots for the reports, so they never join the contacts table.
    source = models.CharField(max_length=128, blank=True, default="")
    campaign = models.CharField(max_length=255, blank=True, default="")
    persona = models.CharField(max_length=128, blank=True, default="")
    score_band = models.CharField(max_length=32, blank=True, default="")
    score = models.FloatField(null=True, blank=True)
    open = models.BooleanField(default=True)

    first_touch_due = models.DateTimeField(null=True, blank=True)
    first_touch_at = models.DateTimeField(null=True, blank=True)
    first_touch_seconds = models.PositiveIntegerField(null=True, blank=True)
    first_touch_state = models.CharField(
        max_length=8, choices=SlaState.choices, default=SlaState.PENDING
    )
    decision_due = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_state = models.CharField(
        max_length=8, choices=SlaState.choices, default=SlaState.PENDING
    )
    # Pending until both clocks stop; breached if either did.
    state = models.CharField(max_length=8, choices=SlaState.choices, default=SlaState.PENDING)
    breached_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices, blank=True, default="")
    reason = models.ForeignKey(
        FeedbackReason, null=True, blank=True, on_delete=models.PROTECT, related_name="handoffs"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-handed_off_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact"], condition=models.Q(open=True), name="handoff_one_open"
            ),
        ]
        indexes = [
            # The inbox: a rep's open handoffs by due time.
            models.Index(fields=["open", "owner", "first_touch_due"], name="handoff_inbox"),
            # The SLA report reads these columns from the index alone.
            models.Index(
                fields=[
                    "handed_off_at",
                    "owner",
                    "team",
                    "state",
                    "first_touch_state",
                    "first_touch_seconds",
                    "verdict",
                    "source",
                ],
                name="handoff_report",
            ),
        ]

    def __str__(self) -> str:
        return f"handoff of contact {self.contact_id} at {self.handed_off_at:%Y-%m-%d %H:%M}"


class Feedback(models.Model):
    """Sales' verdict on an MQL: the history keeps every one."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="feedback")
    handoff = models.ForeignKey(
        Handoff, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback"
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    reason = models.ForeignKey(
        FeedbackReason, null=True, blank=True, on_delete=models.PROTECT, related_name="feedback"
    )
    note = models.CharField(max_length=500, blank=True, default="")
    from_stage = models.CharField(max_length=16)
    to_stage = models.CharField(max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "feedback"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["created_at", "verdict"], name="feedback_time")]

    def __str__(self) -> str:
        return f"{self.verdict} contact {self.contact_id}"


class PeriodKind(models.TextChoices):
    MONTH = "month", _("Month")
    QUARTER = "quarter", _("Quarter")


class QualityMeasure(models.TextChoices):
    ACCEPTANCE = "acceptance", _("Acceptance rate")
    MQL_TO_SQL = "mql_to_sql", _("MQL → SQL rate")


class MarketingCommitment(models.Model):
    """Marketing's promise for a month or quarter: so many MQLs, of at least this quality."""

    period_kind = models.CharField(max_length=8, choices=PeriodKind.choices)
    period_start = models.DateField()
    mql_volume = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    quality_measure = models.CharField(
        max_length=16, choices=QualityMeasure.choices, default=QualityMeasure.ACCEPTANCE
    )
    min_rate = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )
    # Optionally only the MQLs of one segment (a condition of the segments language).
    segment_name = models.CharField(max_length=128, blank=True, default="")
    condition = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-period_start", "period_kind", "segment_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["period_kind", "period_start", "segment_name"],
                name="commitment_unique_period",
            ),
            models.CheckConstraint(
                condition=models.Q(mql_volume__gt=0), name="commitment_volume_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.period_kind} {self.period_start}: {self.mql_volume} MQLs"


class Notification(models.Model):
    """An in-app notice for one user (new lead, breach, lead in the fallback queue)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="handoff_notifications"
    )
    kind = models.CharField(max_length=32)
    message = models.CharField(max_length=500)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    handoff = models.ForeignKey(
        Handoff, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    # Claimed by the mail task before sending, so a notice is mailed at most once.
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at", "created_at"], name="notification_user")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}"
