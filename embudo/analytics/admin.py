"""The Django admin for campaign costs: a list to check what was imported, and single figures
fixed by hand, saved through :func:`embudo.analytics.costs.set_cost` (reporting-currency amount,
audit entry)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest

from embudo.analytics.costs import CostKey, set_cost
from embudo.analytics.models import Cost
from embudo.errors import ValidationFailed
from embudo.web.access import acting_user


@admin.register(Cost)
class CostAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "period_start",
        "period_end",
        "campaign",
        "channel",
        "amount",
        "currency",
        "amount_reporting",
    )
    list_filter = ("channel", "currency")
    search_fields = ("campaign__name", "note")
    date_hierarchy = "period_start"
    list_select_related = ("campaign",)
    fields = ("campaign", "channel", "period_start", "period_end", "amount", "currency", "note")
    readonly_fields = ("amount_reporting", "exchange_rate", "created_by", "created_at")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        key = CostKey(obj.campaign_id, obj.channel, obj.period_start, obj.period_end)
        try:
            # A savepoint: a refused figure leaves the old one in place.
            with transaction.atomic():
                if change:
                    # The target or the days may have changed: the figure moves with them.
                    Cost.objects.filter(pk=obj.pk).delete()
                saved, _outcome = set_cost(
                    key, obj.amount, obj.currency.upper(), note=obj.note, actor=acting_user(request)
                )
            obj.pk = saved.pk
        except ValidationFailed as failed:
            self.message_user(request, str(failed), messages.ERROR)
