"""Marketing spend: what a campaign or a channel cost over a period, for cost per lead and ROI."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from embudo.tracking.models import Campaign, Channel


class Cost(models.Model):
    """Money spent on one campaign or one channel (never both) between two days, inclusive.

    The amount keeps the currency it was paid in; ``amount_reporting`` is it in the reporting
    currency at the rate of the import, the column the ROI report sums (as deals do).
    """

    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="costs"
    )
    channel = models.CharField(max_length=24, choices=Channel.choices, blank=True, default="")
    period_start = models.DateField()
    period_end = models.DateField()  # inclusive
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    exchange_rate = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(1))
    amount_reporting = models.DecimalField(max_digits=16, decimal_places=2)
    note = models.CharField(max_length=255, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["period_start", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(campaign__isnull=False) & models.Q(channel=""))
                | (models.Q(campaign__isnull=True) & ~models.Q(channel="")),
                name="cost_campaign_or_channel",
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__gte=models.F("period_start")),
                name="cost_period_ordered",
            ),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="cost_amount_positive"),
            # One figure per campaign (or channel) and period: importing a file again updates
            # the rows instead of counting the spend twice.
            models.UniqueConstraint(
                fields=["campaign", "period_start", "period_end"],
                condition=models.Q(campaign__isnull=False),
                name="cost_unique_campaign_period",
            ),
            models.UniqueConstraint(
                fields=["channel", "period_start", "period_end"],
                condition=models.Q(campaign__isnull=True),
                name="cost_unique_channel_period",
            ),
        ]
        indexes = [models.Index(fields=["period_start", "period_end"], name="cost_period")]

    def __str__(self) -> str:
        target = self.campaign.name if self.campaign_id and self.campaign else self.channel
        return f"{target} {self.period_start}..{self.period_end}: {self.amount} {self.currency}"


class DataStamp(models.Model):
    """A token per source table of the reports, renewed by database triggers on every write to
    it (see ``embudo.analytics.stamps``): what the reports keep in memory is keyed by it."""

    name = models.CharField(max_length=64, primary_key=True)  # the table
    token = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.token}"
