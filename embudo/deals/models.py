"""Pipelines and their stages, deals with their stage history, currencies, teams and goals."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from embudo.crm.models import Company, Contact


class StageKind(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class DealStatus(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class ForecastCategory(models.TextChoices):
    PIPELINE = "pipeline", _("Pipeline")
    BEST_CASE = "best_case", _("Best case")
    COMMIT = "commit", _("Commit")
    CLOSED_WON = "closed_won", _("Closed won")
    OMITTED = "omitted", _("Omitted")


class PeriodKind(models.TextChoices):
    MONTH = "month", _("Month")
    QUARTER = "quarter", _("Quarter")
    YEAR = "year", _("Year")


class DealSettings(models.Model):
    """One row: the currency every report and goal is expressed in."""

    reporting_currency = models.CharField(max_length=3, default="EUR")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "deal settings"

    def __str__(self) -> str:
        return f"reporting in {self.reporting_currency}"


class ExchangeRate(models.Model):
    """How many units of the reporting currency one unit of ``currency`` is worth."""

    currency = models.CharField(max_length=3, unique=True)
    rate = models.DecimalField(
        max_digits=18, decimal_places=8, validators=[MinValueValidator(Decimal("0.00000001"))]
    )
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["currency"]
        constraints = [
            models.CheckConstraint(condition=models.Q(rate__gt=0), name="exchange_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.rate}"


class Pipeline(models.Model):
    name = models.CharField(max_length=128)
    position = models.PositiveIntegerField(default=0)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="pipeline_unique_name"),
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="pipeline_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    """A step of a pipeline, in order, with the chance that a deal standing here is won."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=128)
    position = models.PositiveIntegerField(default=0)
    probability = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
    )
    kind = models.CharField(max_length=8, choices=StageKind.choices, default=StageKind.OPEN)
    forecast_category = models.CharField(
        max_length=16, choices=ForecastCategory.choices, default=ForecastCategory.PIPELINE
    )

    class Meta:
        ordering = ["pipeline_id", "position", "id"]
        constraints = [
            models.UniqueConstraint("pipeline", Lower("name"), name="stage_unique_name"),
            models.CheckConstraint(
                condition=models.Q(probability__gte=0) & models.Q(probability__lte=1),
                name="stage_probability_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.name} / {self.name}"


class ProductLine(models.Model):
    name = models.CharField(max_length=128)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="product_line_unique_name")]

    def __str__(self) -> str:
        return self.name


class LostReason(models.Model):
    """The editable list a lost deal's reason is chosen from."""

    name = models.CharField(max_length=128)
    active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="lost_reason_unique_name")]

    def __str__(self) -> str:
        return self.name


class SalesTeam(models.Model):
    name = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="sales_team_unique_name")]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    """A rep belongs to at most one sales team, so team totals never count a deal twice."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sales_team_membership"
    )
    team = models.ForeignKey(SalesTeam, on_delete=models.CASCADE, related_name="memberships")

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class Deal(models.Model):
    name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    status = models.CharField(max_length=8, choices=DealStatus.choices, default=DealStatus.OPEN)
    forecast_category = models.CharField(
        max_length=16, choices=ForecastCategory.choices, default=ForecastCategory.PIPELINE
    )
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    # The rate at the last write, and the amount in the reporting currency it gives: reports sum
    # this column. Open deals follow rate changes; closed deals keep the rate they closed at.
    exchange_rate = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(1))
    amount_reporting = models.DecimalField(max_digits=16, decimal_places=2)
    expected_close_date = models.DateField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="deals"
    )
    contacts = models.ManyToManyField(Contact, blank=True, related_name="deals")
    product_line = models.ForeignKey(
        ProductLine, null=True, blank=True, on_delete=models.SET_NULL, related_name="deals"
    )
    lost_reason = models.ForeignKey(
        LostReason, null=True, blank=True, on_delete=models.PROTECT, related_name="deals"
    )
    lost_note = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    # When sales engagement began (the earliest SQL among its contacts, or given on import);
    # the sales cycle can be measured from here instead of from the deal's creation.
    engaged_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    stage_changed_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=models.Q(external_id__isnull=False),
                name="deal_unique_external_id",
            ),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="deal_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(status="open", closed_at__isnull=True)
                | (~models.Q(status="open") & models.Q(closed_at__isnull=False)),
                name="deal_closed_at_iff_closed",
            ),
        ]
        # The reports read these indexes without touching the table: the forecast's open
        # deals by close date and won deals by close time, the sales metrics' deals by creation.
        indexes = [
            models.Index(
                fields=[
                    "status",
                    "expected_close_date",
                    "forecast_category",
                    "amount_reporting",
                    "stage",
                    "owner",
                ],
                name="deal_open_forecast",
            ),
            models.Index(
                fields=["closed_at", "status", "amount_reporting", "owner"], name="deal_closed"
            ),
            models.Index(
                fields=[
                    "created_at",
                    "status",
                    "amount_reporting",
                    "owner",
                    "product_line",
                    "company",
                    "closed_at",
                    "engaged_at",
                ],
                name="deal_created",
            ),
            models.Index(fields=["owner", "status"], name="deal_owner_status"),
            models.Index(fields=["pipeline", "stage", "id"], name="deal_board"),
        ]

    def __str__(self) -> str:
        return self.name


class DealStageChange(models.Model):
    """One move of a deal between stages (its first entry has no ``from_stage``)."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.ForeignKey(
        Stage, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["changed_at", "id"]
        indexes = [models.Index(fields=["deal", "changed_at"], name="deal_stage_change")]

    def __str__(self) -> str:
        return f"deal {self.deal_id}: {self.from_stage_id or '—'} → {self.to_stage_id}"


class Goal(models.Model):
    """A revenue target in the reporting currency for a month, quarter or year; company-wide,
    or for one team, or for one rep."""

    period_kind = models.CharField(max_length=8, choices=PeriodKind.choices)
    period_start = models.DateField()
    amount = models.DecimalField(max_digits=16, decimal_places=2)
    team = models.ForeignKey(
        SalesTeam, null=True, blank=True, on_delete=models.CASCADE, related_name="goals"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-period_start", "period_kind"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="goal_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(team__isnull=True) | models.Q(owner__isnull=True),
                name="goal_team_or_owner",
            ),
            models.UniqueConstraint(
                fields=["period_kind", "period_start"],
                condition=models.Q(team__isnull=True, owner__isnull=True),
                name="goal_unique_company",
            ),
            models.UniqueConstraint(
                fields=["period_kind", "period_start", "team"],
                condition=models.Q(team__isnull=False),
                name="goal_unique_team",
            ),
            models.UniqueConstraint(
                fields=["period_kind", "period_start", "owner"],
                condition=models.Q(owner__isnull=False),
                name="goal_unique_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.period_kind} {self.period_start}: {self.amount}"
